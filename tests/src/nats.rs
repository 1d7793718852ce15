//! nats-server per test (added with the relay).
