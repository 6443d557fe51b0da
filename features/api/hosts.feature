Feature: Hosts
  Hosts are created with their SSH credentials, read, listed and deleted.

  Background:
    Given a running commissaire server

  Scenario: Creating a host anonymously is denied
    Given we are anonymous
     When we put "/api/v0/host/192.168.152.110" with body:
       """
       {"ssh_priv_key": "dGVzdAo="}
       """
     Then commissaire will deny access

  Scenario: Creating a new host, then re-creating it with the same key
    Given we have a valid username and password
     When we put "/api/v0/host/192.168.152.110" with body:
       """
       {"ssh_priv_key": "dGVzdAo=", "remote_user": "root"}
       """
     Then commissaire will note creation
      And the response's "address" is "192.168.152.110"
      And the response's "status" is "investigating"
     When we put "/api/v0/host/192.168.152.110" with body:
       """
       {"ssh_priv_key": "dGVzdAo="}
       """
     Then commissaire will note creation

  Scenario: Re-creating a host with another key is a conflict
    Given we have a valid username and password
      And we have a host at "192.168.152.110"
     When we put "/api/v0/host/192.168.152.110" with body:
       """
       {"ssh_priv_key": "b3RoZXIK"}
       """
     Then commissaire will note a conflict

  Scenario: Creating a host with a key that is not base64 is a bad request
    Given we have a valid username and password
     When we put "/api/v0/host/192.168.152.110" with body:
       """
       {"ssh_priv_key": "*** not base64 ***"}
       """
     Then commissaire will note a bad request
      And the response names the field "ssh_priv_key"

  Scenario: Creating a host with malformed JSON is a bad request
    Given we have a valid username and password
     When we put "/api/v0/host/192.168.152.110" with body:
       """
       {"ssh_priv_key": 
       """
     Then commissaire will note a bad request

  Scenario: Retrieving a host, its credentials and its status
    Given we have a valid username and password
      And we have a host at "192.168.152.110"
     When we get "/api/v0/host/192.168.152.110"
     Then commissaire will note success
      And the response's "address" is "192.168.152.110"
     When we get "/api/v0/host/192.168.152.110/creds"
     Then commissaire will note success
      And the response is:
       """
       {"ssh_priv_key": "dGVzdAo=", "remote_user": "root"}
       """
     When we get "/api/v0/host/192.168.152.110/status"
     Then commissaire will note success
      And the response's "type" is "host_only"
      And the response's "host.status" is "investigating"

  Scenario: Retrieving credentials anonymously is denied
    Given we are anonymous
     When we get "/api/v0/host/192.168.152.110/creds"
     Then commissaire will deny access

  Scenario: Retrieving a missing host
    Given we have a valid username and password
     When we get "/api/v0/host/10.0.0.99"
     Then commissaire will note it's not found

  Scenario: Listing hosts
    Given we have a valid username and password
      And we have a host at "192.168.152.110"
     When we get "/api/v0/hosts"
     Then commissaire will note success
      And the response's "0.address" is "192.168.152.110"

  Scenario: Deleting a host
    Given we have a valid username and password
      And we have a host at "192.168.152.110"
     When we delete "/api/v0/host/192.168.152.110"
     Then commissaire will note success
     When we get "/api/v0/host/192.168.152.110"
     Then commissaire will note it's not found

  Scenario: Deleting a host anonymously is denied
    Given we are anonymous
     When we delete "/api/v0/host/192.168.152.110"
     Then commissaire will deny access
