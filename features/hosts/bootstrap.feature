Feature: Bootstrapping hosts
  A host added through the REST API is investigated over SSH and
  bootstrapped with Ansible; in a cluster with a container manager it
  becomes an active node.

  Scenario: A host in a cluster without a container manager is disassociated
    Given a running commissaire stack
      And a cluster named "plain"
     When we add the ssh host "127.0.0.37" to cluster "plain"
     Then the host "127.0.0.37" becomes "disassociated"
      And the host "127.0.0.37" has its facts filled in
      And the status of host "127.0.0.37" has type "host_only"

  Scenario: A host in a cluster with a container manager becomes an active node
    Given a running commissaire stack
      And a Kubernetes API server whose kubelets mark nodes ready
      And a kubernetes container manager named "k8s"
      And a cluster named "managed" using container manager "k8s"
     When we add the ssh host "127.0.0.38" to cluster "managed"
     Then the host "127.0.0.38" becomes "active"
      And the status of host "127.0.0.38" has type "kubernetes"
      And the status of host "127.0.0.38" shows the node Ready
      And the cluster "managed" has 1 available host
