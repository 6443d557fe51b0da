Feature: Rolling operations are planned, budgeted and steered
  An operation's batch size and failure budget may be counts or percents of
  the cluster's hosts, its order chosen, its plan asked for without starting
  it, and a running one paused, resumed and cancelled. A cluster keeps
  defaults for its operations: budgets, hosts rolled last, maintenance
  windows and health gates.

  Background:
    Given a running commissaire server
      And we have a valid username and password
      And we have a cluster named "honeynut"
      And we have a host at "10.2.0.1" whose status is "active"
      And we have a host at "10.2.0.2" whose status is "active"
      And we have a host at "10.2.0.3" whose status is "active"
      And host "10.2.0.1" is in cluster "honeynut"
      And host "10.2.0.2" is in cluster "honeynut"
      And host "10.2.0.3" is in cluster "honeynut"

  Scenario: Budgets as percents and an order are recorded with who started it
     When we put "/api/v0/cluster/honeynut/restart" with body:
       """
       {"batch_size": "50%", "max_failures": 1, "order": ["10.2.0.3"], "last": ["10.2.0.1"]}
       """
     Then commissaire will note creation
      And the response's "batch_size" is "50%"
      And the response's "max_failures" is 1
      And the response's "order.0" is "10.2.0.3"
      And the response's "last.0" is "10.2.0.1"
      And the response's "started_by" is "a"

  Scenario Outline: Bad budgets, orders and plans name the member at fault
     When we put "/api/v0/cluster/honeynut/<operation>" with body:
       """
       <body>
       """
     Then commissaire will note a bad request
      And the response names the field "<field>"

    Examples:
      | operation | body                                              | field        |
      | restart   | {"batch_size": 0}                                 | batch_size   |
      | restart   | {"batch_size": "150%"}                            | batch_size   |
      | upgrade   | {"max_failures": "some"}                          | max_failures |
      | upgrade   | {"order": ["10.9.9.9"]}                           | order[0]     |
      | restart   | {"order": ["10.2.0.1"], "last": ["10.2.0.1"]}     | last[0]      |
      | restart   | {"dry_run": "yes"}                                | dry_run      |
      | restart   | {"gates": {"prometheus": {"url": "nowhere"}}}     | gates.prometheus.url |

  Scenario: A dry run answers the plan and starts nothing
     When we put "/api/v0/cluster/honeynut/restart" with body:
       """
       {"dry_run": true, "batch_size": 2, "order": ["10.2.0.2"]}
       """
     Then commissaire will note success
      And the response's "dry_run" is true
      And the response's "batches.0.0" is "10.2.0.2"
      And the response's "batches.0.1" is "10.2.0.1"
      And the response's "batches.1.0" is "10.2.0.3"
      And the response's "batch_size.from" is "request"
      And the response's "max_failures.from" is "clusterexec's setting"
     When we get "/api/v0/cluster/honeynut/restart"
     Then commissaire will note it's not found

  Scenario: A running operation is paused, resumed and cancelled
     When we put "/api/v0/cluster/honeynut/upgrade"
     Then commissaire will note creation
     When we put "/api/v0/cluster/honeynut/upgrade/pause"
     Then commissaire will note acceptance
      And the response's "pause_requested" is true
      And the response's "events.0.event" is "pause requested by a"
     When we put "/api/v0/cluster/honeynut/upgrade/resume"
     Then commissaire will note acceptance
      And the response's "events.1.event" is "resume requested by a"
     When we delete "/api/v0/cluster/honeynut/upgrade"
     Then commissaire will note acceptance
      And the response's "cancel_requested" is true

  Scenario: Pausing what was never started is not found
     When we put "/api/v0/cluster/honeynut/deploy/pause"
     Then commissaire will note it's not found
     When we put "/api/v0/cluster/honeynut/deploy/resume"
     Then commissaire will note it's not found

  Scenario: A cluster's rolling defaults
     When we put "/api/v0/cluster/honeynut/rolling" with body:
       """
       {"batch_size": "25%", "last": ["10.2.0.1"],
        "windows": [{"days": ["sat", "sun"], "start": "22:00", "end": "04:00", "timezone": "Europe/Paris"}],
        "gates": {"commands": [{"command": "systemctl is-active kubelet", "retries": 2}]}}
       """
     Then commissaire will note success
     When we get "/api/v0/cluster/honeynut"
     Then the response's "rolling.batch_size" is "25%"
      And the response's "rolling.windows.0.timezone" is "Europe/Paris"
      And the response's "rolling.gates.commands.0.command" is "systemctl is-active kubelet"
     When we put "/api/v0/cluster/honeynut/restart" with body:
       """
       {"dry_run": true}
       """
     Then the response's "batch_size.from" is "cluster"
      And the response's "gates.0.what" is "systemctl is-active kubelet"
      And the response's "batches.2.0" is "10.2.0.1"

  Scenario Outline: Bad rolling defaults name the member at fault
     When we put "/api/v0/cluster/honeynut/rolling" with body:
       """
       <body>
       """
     Then commissaire will note a bad request
      And the response names the field "<field>"

    Examples:
      | body                                                         | field               |
      | {"batch_size": "x"}                                          | batch_size          |
      | {"windows": [{"start": "22:00", "end": "22:00"}]}            | windows[0].end      |
      | {"windows": [{"start": "22:00", "end": "4", "days": ["x"]}]} | windows[0].days[0]  |
      | {"windows": [{"start": "1", "end": "2", "timezone": "Mars"}]} | windows[0].start   |
      | {"gates": {"commands": [{"command": ""}]}}                   | gates.commands[0].command |
      | {"schedule": "nightly"}                                      | schedule            |
