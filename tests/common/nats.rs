//! A real nats-server with JetStream for the tests, started on a free
//! loopback port (scripts/install-deps puts a 2.10 build in .tools/bin).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn nats_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("MEDIC_NATS_SERVER") {
        return Some(p.into());
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/nats-server");
    if local.exists() {
        return Some(local);
    }
    eprintln!("skipped: no nats-server >= 2.10 (run scripts/install-deps)");
    None
}

/// A nats-server with JetStream on loopback; killed on drop.
pub struct NatsServer {
    bin: PathBuf,
    port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
}

impl NatsServer {
    pub fn start() -> Option<NatsServer> {
        let bin = nats_binary()?;
        let port = medic::replay::free_port().unwrap();
        let mut s = NatsServer {
            bin,
            port,
            store: tempfile::tempdir().unwrap(),
            child: None,
        };
        s.restart();
        Some(s)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts (again) on the same port and store: JetStream data survives.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new(&self.bin)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
