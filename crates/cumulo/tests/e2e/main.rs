//! End-to-end tests: the `cumulo` binary as users run it, over real HTTP on loopback.
//! Every process a test starts is stopped by PID (and dies with the test's Drop guard).

mod autoscaling;
mod cli_lab;
mod cloudwatch;
mod elb;
mod fleet;
mod instances;
mod notifications;
mod sdk;
mod ssm;
mod stacks;
mod support;
