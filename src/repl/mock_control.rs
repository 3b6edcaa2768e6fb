//! `mock start|stop|status|clock|journal|reset`: the in-process mock under the REPL's control.

use std::time::Duration;

use super::Session;

impl Session {
    pub(super) fn mock(&mut self, args: &[&str]) -> Result<String, String> {
        match args.first().copied() {
            Some("start") => {
                if let Some(m) = &self.mock {
                    return Ok(format!("mock already running at {}\n", m.url()));
                }
                let mut cfg = crate::mock::MockConfig::bundled()?;
                cfg.auto_approve = !args.contains(&"--no-auto-approve");
                let cfg = cfg.with_state_file(
                    crate::state::state_dir(&self.runner.collection.dir()).join("mock.json"),
                );
                let m = crate::mock::MockServer::start(cfg).map_err(|e| e.to_string())?;
                self.runner.inputs.vars.retain(|(k, _)| k != "mock_url");
                self.runner
                    .inputs
                    .vars
                    .push(("mock_url".into(), m.url().to_string()));
                if self.runner.collection.environments.contains_key("mock") {
                    self.runner.inputs.env = Some("mock".into());
                }
                let url = m.url().to_string();
                self.mock = Some(m);
                self.sync_clock();
                Ok(format!(
                    "mock listening on {url} (environment {})\n",
                    self.runner.env_key()
                ))
            }
            Some("stop") => match self.mock.take() {
                Some(m) => {
                    m.stop();
                    self.runner.clock_offset = 0;
                    Ok("mock stopped\n".into())
                }
                None => Err("no mock is running".into()),
            },
            Some("status") => {
                let m = self
                    .mock
                    .as_ref()
                    .ok_or("no mock is running; `mock start`")?;
                let sim = m.shared().lock();
                let (total, _) = m.shared().journal(0);
                let now = crate::mock::store::ts(m.shared().now_ms());
                Ok(format!(
                    "mock at {}\nclock {now} (offset {})\ncontacts {} · lists {} · activities {} · requests served {total}\n",
                    m.url(),
                    crate::util::human_duration(Duration::from_millis(
                        sim.clock_offset_ms.max(0) as u64
                    )),
                    sim.contacts.len(),
                    sim.lists.len(),
                    sim.activities.len()
                ))
            }
            Some("clock") => {
                let m = self
                    .mock
                    .as_ref()
                    .ok_or("no mock is running; `mock start`")?;
                let d = args.get(1).ok_or("mock clock ADVANCE (e.g. 25h)")?;
                let d = crate::util::parse_duration(d.trim_start_matches('+'))?;
                let now = m.shared().advance(d);
                self.sync_clock();
                Ok(format!(
                    "mock clock advanced {}; now {}\n",
                    crate::util::human_duration(d),
                    crate::mock::store::ts(now)
                ))
            }
            Some("journal") => {
                let m = self
                    .mock
                    .as_ref()
                    .ok_or("no mock is running; `mock start`")?;
                let (total, entries) = m.shared().journal(20);
                let mut out = format!("{total} requests served; the last {}:\n", entries.len());
                for e in entries {
                    out.push_str(&format!(
                        "  {} {:<6} {:<40} {} {:<28} {}µs\n",
                        crate::mock::store::ts(e.at),
                        e.method,
                        e.path,
                        e.status,
                        e.route,
                        e.micros
                    ));
                }
                Ok(out)
            }
            Some("reset") => {
                let m = self
                    .mock
                    .as_ref()
                    .ok_or("no mock is running; `mock start`")?;
                m.shared().reset();
                self.sync_clock();
                Ok("mock reset to its seeded account\n".into())
            }
            _ => Err("mock start|stop|status|clock ADVANCE|journal|reset".into()),
        }
    }
}
