Feature: Cluster operations are recorded
  Starting a restart, upgrade or deploy records it as in process.

  Background:
    Given a running commissaire server

  Scenario Outline: Starting an operation anonymously is denied
    Given we are anonymous
     When we put "/api/v0/cluster/honeynut/<operation>"
     Then commissaire will deny access

    Examples:
      | operation |
      | restart   |
      | upgrade   |
      | deploy    |

  Scenario Outline: Starting an operation
    Given we have a valid username and password
      And we have a cluster named "honeynut"
     When we put "/api/v0/cluster/honeynut/<operation>" with body:
       """
       {"version": "7.2.6"}
       """
     Then commissaire will note creation
      And the response's "status" is "in_process"
     When we get "/api/v0/cluster/honeynut/<operation>"
     Then commissaire will note success
      And the response's "status" is "in_process"
     When we put "/api/v0/cluster/honeynut/<operation>" with body:
       """
       {"version": "7.2.6"}
       """
     Then commissaire will note a conflict

    Examples:
      | operation |
      | restart   |
      | upgrade   |
      | deploy    |

  Scenario: A deploy needs a version
    Given we have a valid username and password
      And we have a cluster named "honeynut"
     When we put "/api/v0/cluster/honeynut/deploy"
     Then commissaire will note a bad request
      And the response names the field "version"

  Scenario: No operation was started yet
    Given we have a valid username and password
      And we have a cluster named "honeynut"
     When we get "/api/v0/cluster/honeynut/upgrade"
     Then commissaire will note it's not found
