Feature: Container managers
  Background:
    Given a running commissaire server

  Scenario: Creating, retrieving, listing and deleting a container manager
    Given we have a valid username and password
     When we put "/api/v0/containermanager/prod_openshift" with body:
       """
       {"type": "openshift", "options": {"server_url": "https://192.168.152.101:8443", "token": "aaa"}}
       """
     Then commissaire will note creation
     When we get "/api/v0/containermanager/prod_openshift"
     Then commissaire will note success
      And the response's "type" is "openshift"
      And the response's "options.token" is "********"
      And the response's "options.server_url" is "https://192.168.152.101:8443"
     When we get "/api/v0/containermanagers"
     Then the response is:
       """
       ["prod_openshift"]
       """
     When we delete "/api/v0/containermanager/prod_openshift"
     Then commissaire will note success
     When we get "/api/v0/containermanager/prod_openshift"
     Then commissaire will note it's not found

  Scenario: Re-creating a container manager differently is a conflict
    Given we have a valid username and password
      And we have a container manager named "cm"
     When we put "/api/v0/containermanager/cm" with body:
       """
       {"type": "kubernetes", "options": {"server_url": "https://k8s.example.com"}}
       """
     Then commissaire will note a conflict

  Scenario: A container manager used by a cluster cannot be deleted
    Given we have a valid username and password
      And we have a cluster named "honeynut" with container manager "cm"
     When we delete "/api/v0/containermanager/cm"
     Then commissaire will note a conflict

  Scenario: An unknown type is a bad request
    Given we have a valid username and password
     When we put "/api/v0/containermanager/cm" with body:
       """
       {"type": "mesos"}
       """
     Then commissaire will note a bad request

  Scenario: Container managers anonymously are denied
    Given we are anonymous
     When we put "/api/v0/containermanager/cm" with body:
       """
       {"type": "trivial"}
       """
     Then commissaire will deny access
