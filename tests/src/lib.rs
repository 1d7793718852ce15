//! Integration and end-to-end tests of Baton, in `tests/tests/`: they run
//! the real crates together and, as the pipeline grows, against real
//! PostgreSQL, real NATS JetStream and a real browser. A test that needs a
//! service fails loudly when it is missing; none skips.
