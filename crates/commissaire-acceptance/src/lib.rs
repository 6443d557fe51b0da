//! Test-only crate: the REST server against the real test bed
//! (`scripts/testbed.sh`: RabbitMQ, Redis, etcd), for what the fast tier of
//! `commissaire-http` (the API over the in-process bus and a redb file)
//! cannot show: the original's Gherkin features over both real buses, the
//! read cache against etcd written behind the storage service's back,
//! basic-auth users kept in etcd, and the documentation's `curl` examples.
//! Everything is in `tests/`.
