//! Placeholder until the FieldFilter bench lands.
fn main() {}
