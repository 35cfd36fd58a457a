//! Importers that turn public incident data into fixtures.

pub mod nezha;
