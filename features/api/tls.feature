Feature: TLS client certificate authentication
  The server verifies client certificates against a CA and lets a
  certificate with the allowed common name in.

  Background:
    Given a running commissaire server with TLS client certificates for "test-client"

  Scenario: The allowed certificate is accepted
    Given we have a client certificate for "test-client"
     When we get "/api/v0/clusters"
     Then commissaire will note success

  Scenario: Another certificate of the same CA is denied
    Given we have a client certificate for "other-client"
     When we get "/api/v0/clusters"
     Then commissaire will deny access

  Scenario: No certificate and no password is denied
    Given we are anonymous
     When we get "/api/v0/clusters"
     Then commissaire will deny access

  Scenario: Basic authentication still works next to certificates
    Given we have a valid username and password
     When we get "/api/v0/clusters"
     Then commissaire will note success
