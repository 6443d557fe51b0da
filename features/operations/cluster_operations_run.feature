@allow.skipped
Feature: Cluster operations run host by host
  The clusterexec service runs a started restart, upgrade or deploy on the
  cluster's hosts one after another with Ansible over SSH, and records its
  progress. Run against real sshd test hosts by
  crates/commissaire-clusterexec-service/tests/features.rs (other runners
  skip these scenarios: they have no clusterexec step).

  Background:
    Given a commissaire stack with a clusterexec service
      And a cluster "honeynut" of the test hosts "127.0.0.15 127.0.0.16 127.0.0.17"

  Scenario: A rolling restart
     When we put "/api/v0/cluster/honeynut/restart"
     Then commissaire will note creation
      And the response's "status" is "in_process"
     When we put "/api/v0/cluster/honeynut/restart"
     Then commissaire will note a conflict
     When we wait for "/api/v0/cluster/honeynut/restart" to end
     Then the response's "status" is "finished"
      And the response's "restarted" lists "127.0.0.15 127.0.0.16 127.0.0.17"
      And the response's "in_process" lists ""
      And the operation was seen in process with its hosts done one by one
      And the hosts were restarted one after another

  Scenario: A rolling upgrade
     When we put "/api/v0/cluster/honeynut/upgrade"
     Then commissaire will note creation
     When we wait for "/api/v0/cluster/honeynut/upgrade" to end
     Then the response's "status" is "finished"
      And the response's "upgraded" lists "127.0.0.15 127.0.0.16 127.0.0.17"
      And the hosts were upgraded one after another

  Scenario: A rolling deploy
     When we put "/api/v0/cluster/honeynut/deploy" with body:
       """
       {"version": "7.2.6"}
       """
     Then commissaire will note creation
      And the response's "version" is "7.2.6"
     When we wait for "/api/v0/cluster/honeynut/deploy" to end
     Then the response's "status" is "finished"
      And the response's "deployed" lists "127.0.0.15 127.0.0.16 127.0.0.17"
      And every host got version "7.2.6", one after another

  Scenario: A cancelled upgrade stops after the current host
     When we put "/api/v0/cluster/honeynut/upgrade"
      And the first host has begun
      And we delete "/api/v0/cluster/honeynut/upgrade"
     Then commissaire will note acceptance
     When we wait for "/api/v0/cluster/honeynut/upgrade" to end
     Then the response's "status" is "cancelled"
      And the response's "upgraded" lists "127.0.0.15"
