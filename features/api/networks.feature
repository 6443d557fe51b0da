Feature: Networks
  Background:
    Given a running commissaire server

  Scenario: The default network exists from the start
    Given we have a valid username and password
     When we get "/api/v0/network/default"
     Then commissaire will note success
      And the response is:
       """
       {"name": "default", "type": "flannel_etcd", "options": {}}
       """

  Scenario: Creating, listing and deleting a network
    Given we have a valid username and password
     When we put "/api/v0/network/mynet" with body:
       """
       {"type": "flannel_server", "options": {"address": "192.168.152.101:8080"}}
       """
     Then commissaire will note creation
     When we get "/api/v0/networks"
     Then the response lists "mynet"
      And the response lists "default"
     When we delete "/api/v0/network/mynet"
     Then commissaire will note success
     When we get "/api/v0/network/mynet"
     Then commissaire will note it's not found

  Scenario: Re-creating a network differently is a conflict
    Given we have a valid username and password
      And we have a network named "mynet"
     When we put "/api/v0/network/mynet" with body:
       """
       {"type": "flannel_server", "options": {"address": "10.0.0.1:8080"}}
       """
     Then commissaire will note a conflict

  Scenario: An unknown network type is a bad request
    Given we have a valid username and password
     When we put "/api/v0/network/mynet" with body:
       """
       {"type": "calico"}
       """
     Then commissaire will note a bad request
      And the response names the field "type"

  Scenario: Networks anonymously are denied
    Given we are anonymous
     When we get "/api/v0/networks"
     Then commissaire will deny access
