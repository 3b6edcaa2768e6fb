//! `mock start|stop|status|clock|journal|reset`: the in-process mock under the REPL's control.

use std::time::Duration;

use super::Session;

const USAGE: &str =
    "usage: mock start [--no-auto-approve] | stop | status | clock ADVANCE | journal | reset";

impl Session {
    pub(super) fn mock(
        &mut self,
        args: &[String],
        no_auto_approve: bool,
    ) -> Result<String, String> {
        let sub = args.first().map(String::as_str);
        let rest = &args[args.len().min(1)..];
        if sub != Some("clock") && !rest.is_empty() {
            return Err(format!("unexpected `{}` — {USAGE}", rest.join(" ")));
        }
        if no_auto_approve && sub != Some("start") {
            return Err(format!(
                "--no-auto-approve goes with `mock start` — {USAGE}"
            ));
        }
        match sub {
            Some("start") => {
                if let Some(m) = &self.mock {
                    return Ok(format!("mock already running at {}\n", m.url()));
                }
                let mut cfg = crate::session::mock_config(&self.runner.collection.dir(), false)?;
                cfg.auto_approve = !no_auto_approve;
                let m = crate::mock::MockServer::start(cfg).map_err(|e| e.to_string())?;
                self.runner.inputs.mock_url = Some(m.url().to_string());
                if self.runner.collection.environments.contains_key("mock") {
                    self.runner.inputs.env = Some("mock".into());
                }
                self.runner.rebuild_redactor();
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
                let m = self.running()?;
                let sim = m.shared().lock();
                let (total, _) = m.shared().journal(0);
                let now = crate::mock::store::ts(m.shared().now_ms());
                Ok(format!(
                    "mock at {}\nclock {now} (offset {})\ncontacts {} · lists {} · activities {} · requests served {total}\n",
                    m.url(),
                    crate::util::exact_duration(Duration::from_millis(
                        sim.clock_offset_ms.max(0) as u64
                    )),
                    sim.contacts.len(),
                    sim.lists.len(),
                    sim.activities.len()
                ))
            }
            Some("clock") => {
                let m = self.running()?;
                if rest.is_empty() {
                    return Err("mock clock ADVANCE (e.g. 25h, 1h30m, \"1 h\")".into());
                }
                let text = rest.join(" ");
                let d = crate::util::parse_duration(text.trim_start_matches('+'))?;
                let now = m.shared().try_advance(d)?;
                self.sync_clock();
                Ok(format!(
                    "mock clock advanced {}; now {}\n",
                    crate::util::exact_duration(d),
                    crate::mock::store::ts(now)
                ))
            }
            Some("journal") => {
                let m = self.running()?;
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
                let m = self.running()?;
                m.shared().reset();
                self.sync_clock();
                // The mock forgot every token it issued: so does this environment.
                let forgot = self.forget_tokens();
                Ok(format!(
                    "mock reset to its seeded account{}\n",
                    if forgot {
                        "; the tokens it had issued are forgotten here too — `login` again"
                    } else {
                        ""
                    }
                ))
            }
            Some(other) => Err(format!("no `mock {other}` — {USAGE}")),
            None => Err(USAGE.into()),
        }
    }

    fn running(&self) -> Result<&crate::mock::MockServer, String> {
        self.mock
            .as_ref()
            .ok_or_else(|| "no mock is running; `mock start`".to_string())
    }

    /// Drops the stored tokens and grant of this environment; returns whether there were any.
    fn forget_tokens(&mut self) -> bool {
        let Some(o) = self.runner.collection.oauth2.clone() else {
            return false;
        };
        let mut any = false;
        for name in [&o.access_token, &o.refresh_token] {
            any |= self.runner.unset_var(name);
        }
        if self.runner.env_state().grant().is_some() {
            self.runner.env_state_mut().set_grant(None);
            any = true;
        }
        any
    }
}
