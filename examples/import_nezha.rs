//! Imports one day of the Nezha Online Boutique fault-injection data as
//! medic fixtures, one per fault (see `medic::import::nezha`).
//!
//!     cargo run --release --example import_nezha -- DAY_DIR OUT_DIR

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [day, out] = args.as_slice() else {
        anyhow::bail!("usage: import_nezha DAY_DIR OUT_DIR");
    };
    let imported = medic::import::nezha::import_day(&PathBuf::from(day), &PathBuf::from(out))?;
    for reason in &imported.skipped {
        eprintln!("skipped {reason}");
    }
    eprintln!(
        "wrote {} fixture(s) to {}, skipped {}",
        imported.written.len(),
        out,
        imported.skipped.len()
    );
    Ok(())
}
