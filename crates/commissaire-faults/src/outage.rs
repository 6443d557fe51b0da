//! Guards that take the broker or etcd down and bring them back when dropped, also when the test panics.

use crate::testkit;

/// Stops the broker (`rabbitmqctl stop_app`) and starts it again when
/// dropped, also when the test panics.
pub struct BrokerDown(bool);

impl BrokerDown {
    /// Stops the broker.
    pub fn stop() -> BrokerDown {
        testkit::rabbitmqctl(&["stop_app"]);
        BrokerDown(true)
    }

    /// Starts it again now.
    pub fn restore(mut self) {
        self.0 = false;
        testkit::rabbitmqctl(&["start_app"]);
        testkit::rabbitmqctl(&["await_startup"]);
    }
}

impl Drop for BrokerDown {
    fn drop(&mut self) {
        if self.0 {
            testkit::rabbitmqctl(&["start_app"]);
        }
    }
}

/// Stops etcd and starts it again when dropped, also when the test panics.
pub struct EtcdDown(bool);

impl EtcdDown {
    /// Stops etcd.
    pub fn stop() -> EtcdDown {
        testkit::etcd_stop();
        EtcdDown(true)
    }

    /// Starts it again now (waits until it is healthy).
    pub fn restore(mut self) {
        self.0 = false;
        testkit::etcd_start();
    }
}

impl Drop for EtcdDown {
    fn drop(&mut self) {
        if self.0 {
            testkit::etcd_start();
        }
    }
}
