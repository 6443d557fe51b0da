Feature: Cluster members
  Hosts join and leave clusters.

  Background:
    Given a running commissaire server

  Scenario: Cluster member endpoints anonymously are denied
    Given we are anonymous
     When we get "/api/v0/cluster/honeynut/hosts"
     Then commissaire will deny access
     When we put "/api/v0/cluster/honeynut/hosts/192.168.152.110"
     Then commissaire will deny access
     When we delete "/api/v0/cluster/honeynut/hosts/192.168.152.110"
     Then commissaire will deny access

  Scenario: A host is not implicitly added to a cluster
    Given we have a valid username and password
      And we have a cluster named "honeynut"
      And we have a host at "192.168.152.110"
     When we get "/api/v0/cluster/honeynut"
     Then the response's "hosts.total" is 0
     When we get "/api/v0/cluster/honeynut/hosts"
     Then the response is an empty list
     When we get "/api/v0/cluster/honeynut/hosts/192.168.152.110"
     Then commissaire will note it's not found

  Scenario: Adding and removing a host
    Given we have a valid username and password
      And we have a cluster named "honeynut"
      And we have a host at "192.168.152.110" whose status is "active"
     When we put "/api/v0/cluster/honeynut/hosts/192.168.152.110"
     Then commissaire will note success
     When we get "/api/v0/cluster/honeynut"
     Then the response's "hosts.total" is 1
      And the response's "hosts.available" is 1
      And the response's "status" is "ok"
     When we get "/api/v0/cluster/honeynut/hosts"
     Then the response lists "192.168.152.110"
     When we delete "/api/v0/cluster/honeynut/hosts/192.168.152.110"
     Then commissaire will note success
     When we get "/api/v0/cluster/honeynut/hosts/192.168.152.110"
     Then commissaire will note it's not found

  Scenario: Without a container manager a disassociated member is healthy
    Given we have a valid username and password
      And we have a cluster named "honeynut"
      And we have a host at "192.168.152.110" whose status is "disassociated"
      And we have a host at "192.168.152.111" whose status is "active"
     When we put "/api/v0/cluster/honeynut/hosts/192.168.152.110"
     Then commissaire will note success
     When we get "/api/v0/cluster/honeynut"
     Then the response's "hosts.available" is 1
      And the response's "status" is "ok"
     When we put "/api/v0/cluster/honeynut/hosts/192.168.152.111"
     Then commissaire will note success
     When we get "/api/v0/cluster/honeynut"
     Then the response's "hosts.available" is 2
      And the response's "hosts.unavailable" is 0
      And the response's "status" is "ok"

  Scenario: A host that is not ready cannot join
    Given we have a valid username and password
      And we have a cluster named "honeynut"
      And we have a host at "192.168.152.110" whose status is "failed"
     When we put "/api/v0/cluster/honeynut/hosts/192.168.152.110"
     Then commissaire will note a conflict

  Scenario Outline: Replacing the host list
    Given we have a valid username and password
      And we have a cluster named "honeynut"
      And we have a host at "192.168.152.110" whose status is "disassociated"
     When we put "/api/v0/cluster/honeynut/hosts" with body:
       """
       <body>
       """
     Then commissaire will note <outcome>

    Examples:
      | body                                         | outcome       |
      | "a string"                                   | a bad request |
      | {"old": ["bogus"], "new": ["192.168.152.110"]} | a conflict    |
      | {"old": [], "new": ["192.168.152.110"]}        | success       |

  Scenario: Deleting a host removes it from its cluster
    Given we have a valid username and password
      And we have a cluster named "honeynut"
      And we have a host at "192.168.152.110" whose status is "active"
      And host "192.168.152.110" is in cluster "honeynut"
     When we delete "/api/v0/host/192.168.152.110"
     Then commissaire will note success
     When we get "/api/v0/cluster/honeynut/hosts"
     Then the response is an empty list

  Scenario: Creating a host in a missing cluster is a conflict
    Given we have a valid username and password
     When we put "/api/v0/host/192.168.152.110" with body:
       """
       {"ssh_priv_key": "dGVzdAo=", "cluster": "missing"}
       """
     Then commissaire will note a conflict

  Scenario: Creating a host in a cluster makes it a member
    Given we have a valid username and password
      And we have a cluster named "honeynut"
     When we put "/api/v0/host/192.168.152.110" with body:
       """
       {"ssh_priv_key": "dGVzdAo=", "cluster": "honeynut"}
       """
     Then commissaire will note creation
     When we get "/api/v0/cluster/honeynut/hosts/192.168.152.110"
     Then commissaire will note success
