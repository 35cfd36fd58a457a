//! The recorded incidents shipped with medic, so `medic replay` with no
//! arguments shows what medic does on its defaults.

pub const FIXTURES: &[(&str, &str)] = &[];
