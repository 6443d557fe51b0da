Feature: Clusters
  Operators create, read, list and delete clusters.

  Background:
    Given a running commissaire server

  Scenario: Creating a cluster anonymously is denied
    Given we are anonymous
     When we put "/api/v0/cluster/honeynut"
     Then commissaire will deny access

  Scenario: Creating a new cluster, then re-creating it compatibly
    Given we have a valid username and password
     When we put "/api/v0/cluster/honeynut" with body:
       """
       {"network": "default"}
       """
     Then commissaire will note creation
      And the response's "name" is "honeynut"
     When we put "/api/v0/cluster/honeynut" with body:
       """
       {"network": "default"}
       """
     Then commissaire will note creation

  Scenario: Re-creating a cluster with another network is a conflict
    Given we have a valid username and password
      And we have a cluster named "honeynut"
      And we have a network named "othernet"
     When we put "/api/v0/cluster/honeynut" with body:
       """
       {"network": "othernet"}
       """
     Then commissaire will note a conflict

  Scenario: Creating a cluster without a body
    Given we have a valid username and password
     When we put "/api/v0/cluster/multigrain"
     Then commissaire will note creation

  Scenario: Creating a cluster on a missing network is a bad request
    Given we have a valid username and password
     When we put "/api/v0/cluster/honeynut" with body:
       """
       {"network": "nowhere"}
       """
     Then commissaire will note a bad request
      And the response names the field "network"

  Scenario: Retrieving an empty cluster
    Given we have a valid username and password
      And we have a cluster named "honeynut"
     When we get "/api/v0/cluster/honeynut"
     Then commissaire will note success
      And the response is:
       """
       {"name": "honeynut", "status": "ok", "network": "default", "container_manager": "",
        "hosts": {"total": 0, "available": 0, "unavailable": 0}}
       """

  Scenario: Retrieving a missing cluster
    Given we have a valid username and password
     When we get "/api/v0/cluster/nothing"
     Then commissaire will note it's not found

  Scenario: Listing clusters
    Given we have a valid username and password
      And we have a cluster named "honeynut"
     When we get "/api/v0/clusters"
     Then commissaire will note success
      And the response is:
       """
       ["honeynut"]
       """

  Scenario: Listing clusters anonymously is denied
    Given we are anonymous
     When we get "/api/v0/clusters"
     Then commissaire will deny access

  Scenario: Deleting a cluster
    Given we have a valid username and password
      And we have a cluster named "honeynut"
     When we delete "/api/v0/cluster/honeynut"
     Then commissaire will note success
      And the response is an empty list
     When we get "/api/v0/cluster/honeynut"
     Then commissaire will note it's not found

  Scenario: Deleting a cluster anonymously is denied
    Given we are anonymous
     When we delete "/api/v0/cluster/honeynut"
     Then commissaire will deny access

  Scenario: A wrong password is denied
    Given we have a wrong password
     When we get "/api/v0/clusters"
     Then commissaire will deny access

  Scenario: A wrong method is not allowed
    Given we have a valid username and password
     When we post "/api/v0/clusters"
     Then commissaire will note the method is not allowed
