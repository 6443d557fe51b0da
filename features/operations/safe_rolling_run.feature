@allow.skipped
Feature: Rolling a cluster safely on real hosts
  A running roll pauses between hosts and resumes where it stopped; a
  health gate that fails stops it with what the check printed; a dry run
  plans it and runs nothing. Run against real sshd test hosts by
  crates/commissaire-clusterexec-service/tests/features.rs (other runners
  skip these scenarios: they have no clusterexec step).

  Background:
    Given a commissaire stack with a clusterexec service
      And a cluster "honeynut" of the test hosts "127.0.0.15 127.0.0.16 127.0.0.17"

  Scenario: A paused upgrade waits between hosts and resumes where it stopped
     When we put "/api/v0/cluster/honeynut/upgrade"
      And the first host has begun
      And we put "/api/v0/cluster/honeynut/upgrade/pause"
     Then commissaire will note acceptance
     When we wait until "/api/v0/cluster/honeynut/upgrade" says "waiting" is "paused on request"
     Then the response's "upgraded" lists "127.0.0.15"
      And the response's "in_process" lists ""
     When we put "/api/v0/cluster/honeynut/upgrade/resume"
     Then commissaire will note acceptance
     When we wait for "/api/v0/cluster/honeynut/upgrade" to end
     Then the response's "status" is "finished"
      And the response's "upgraded" lists "127.0.0.15 127.0.0.16 127.0.0.17"
      And every host's timeline is "run", done
      And the operation's events are "paused on request; paused; resume requested; resumed"

  Scenario: A failing health gate stops the roll with the check's output
     When we put "/api/v0/cluster/honeynut/rolling" with body:
       """
       {"gates": {"commands": [{"command": "echo disk full; exit 3", "retries": 1, "interval_seconds": 0.2}]}}
       """
     Then commissaire will note success
     When we put "/api/v0/cluster/honeynut/upgrade"
      And we wait for "/api/v0/cluster/honeynut/upgrade" to end
     Then the response's "status" is "failed"
      And the response's "failed_hosts" lists "127.0.0.15"
      And the response's "reason" is "127.0.0.15: health check 'echo disk full; exit 3' failed (2 tries): exit 3: disk full"

  Scenario: A dry run plans the roll and runs nothing
     When we put "/api/v0/cluster/honeynut/restart" with body:
       """
       {"dry_run": true, "batch_size": "67%", "last": ["127.0.0.15"]}
       """
     Then commissaire will note success
      And the plan's batches are "127.0.0.16 127.0.0.17 | 127.0.0.15"
     When we get "/api/v0/cluster/honeynut/restart"
     Then commissaire will note it's not found
      And no host was worked on
