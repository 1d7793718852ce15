//! Baton's read models (the ward bed-flow board, hospital and system flow
//! boards, and the team handover board) as pure folds over events, and the
//! runner that feeds them from the event stream with checkpoints.
//!
//! Not built yet: the boards arrive with the projections issue. This crate
//! exists now so the workspace has its final shape from the first commit.
