//! `mock start|stop|status|clock|journal|reset|fault|tokens`: the in-process mock under the REPL's control.

use std::time::Duration;

use super::Session;

const USAGE: &str = "usage: mock start [--no-auto-approve] | stop | status | clock ADVANCE | journal | reset | fault add ROUTE KEY=VALUE... | fault list | fault clear [ID] | tokens expire|revoke [CLIENT_ID]|rotate";

impl Session {
    pub(super) fn mock(
        &mut self,
        args: &[String],
        no_auto_approve: bool,
    ) -> Result<String, String> {
        let sub = args.first().map(String::as_str);
        let rest = &args[args.len().min(1)..];
        if !matches!(sub, Some("clock" | "fault" | "tokens")) && !rest.is_empty() {
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
                let now = crate::mock::packs::constant_contact::store::ts(m.shared().now_ms());
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
                    crate::mock::packs::constant_contact::store::ts(now)
                ))
            }
            Some("journal") => {
                let m = self.running()?;
                let (total, entries) = m.shared().journal(20);
                let mut out = format!("{total} requests served; the last {}:\n", entries.len());
                for e in entries {
                    out.push_str(&format!(
                        "  {} {:<6} {:<40} {} {:<28} {}µs{}{}\n",
                        crate::mock::packs::constant_contact::store::ts(e.at),
                        e.method,
                        e.path,
                        e.status,
                        e.route,
                        e.micros,
                        e.fault.map(|f| format!("  fault: {f}")).unwrap_or_default(),
                        e.note.map(|n| format!("  {n}")).unwrap_or_default()
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
            Some("fault") => {
                let m = self.running()?;
                let faults = &m.shared().faults;
                match rest.first().map(String::as_str) {
                    Some("add") if rest.len() > 1 => {
                        let spec = crate::mock::engine::faults::parse_compact(&rest[1..].join(" "))?;
                        let id = faults.add(spec)?;
                        Ok(format!("fault {id} added; `mock fault list` shows it, `mock fault clear {id}` removes it\n"))
                    }
                    Some("list") if rest.len() == 1 => {
                        let list = faults.list();
                        if list.is_empty() {
                            return Ok("no faults\n".into());
                        }
                        let mut out = String::new();
                        for f in list {
                            let conditions: Vec<String> = ["probability", "every", "times", "remaining"]
                                .iter()
                                .filter_map(|k| f.get(*k).map(|v| format!("{k}={v}")))
                                .collect();
                            out.push_str(&format!(
                                "  {:>3}  {:<32} {:<20} {} matched, {} applied {}\n",
                                f["id"],
                                f["route"].as_str().unwrap_or(""),
                                f["does"].as_str().unwrap_or(""),
                                f["matched"],
                                f["applied"],
                                conditions.join(" ")
                            ));
                        }
                        Ok(out)
                    }
                    Some("clear") if rest.len() == 1 => {
                        Ok(format!("{} faults cleared\n", faults.clear()))
                    }
                    Some("clear") if rest.len() == 2 => {
                        let id: u64 = rest[1].parse().map_err(|_| format!("`{}` is not a fault id; `mock fault list` shows them", rest[1]))?;
                        if faults.remove(id) {
                            Ok(format!("fault {id} removed\n"))
                        } else {
                            Err(format!("no fault {id}; `mock fault list` shows them"))
                        }
                    }
                    _ => Err("mock fault add ROUTE KEY=VALUE... (e.g. `mock fault add GET /v3/contacts status=503 times=2`, `mock fault add * delay=200ms..1s`) | mock fault list | mock fault clear [ID]".into()),
                }
            }
            Some("tokens") => {
                let m = self.running()?;
                let shared = m.shared();
                match rest
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .as_slice()
                {
                    ["expire"] => {
                        shared.expire_access_tokens();
                        self.sync_clock();
                        Ok("every access token issued so far now fails; `refresh` or `login` for a new one\n".into())
                    }
                    ["revoke"] => Ok(format!(
                        "{} refresh tokens revoked\n",
                        shared.revoke_refresh_tokens(None)
                    )),
                    ["revoke", client] => Ok(format!(
                        "{} refresh tokens of {client} revoked\n",
                        shared.revoke_refresh_tokens(Some(client))
                    )),
                    ["rotate"] => {
                        let kid = shared.rotate_signing_key()?;
                        Ok(format!(
                            "signing key rotated to {kid}; tokens signed before now fail\n"
                        ))
                    }
                    _ => Err("mock tokens expire | revoke [CLIENT_ID] | rotate".into()),
                }
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
