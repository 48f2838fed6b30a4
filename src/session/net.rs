//! What a session's flows reach the servers with: the agent for OAuth requests, the address
//! rules every URL a server names must pass before anything is sent there, and the front
//! end's progress hook.

use std::sync::Arc;

use crate::address::{AddressRules, parse_endpoint};
use crate::error::{Result, Step};

use super::progress::{self, Progress, ProgressHook};

/// The agent, the address rules and the progress hook of a session.
pub(super) struct Net {
    /// The session's bearer agent (which leaves OAuth exchanges alone), or one the caller
    /// brought.
    agent: ureq::Agent,
    /// Where the servers may send the client.
    rules: Arc<AddressRules>,
    /// Told each step of a login, refresh or grant.
    progress: Option<ProgressHook>,
}

impl Net {
    pub(super) fn new(
        agent: ureq::Agent,
        rules: Arc<AddressRules>,
        progress: Option<ProgressHook>,
    ) -> Net {
        Net {
            agent,
            rules,
            progress,
        }
    }

    /// The agent OAuth requests go through.
    pub(super) fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    /// The session's address rules.
    pub(super) fn rules(&self) -> &AddressRules {
        &self.rules
    }

    /// Checks a URL a server named (or the cache holds) against the address rules.
    pub(super) fn check_named(&self, url: &str, step: Step) -> Result<()> {
        self.rules.check_url(&parse_endpoint(url, step)?, step)
    }

    /// Tells the front end and the log about a step.
    pub(super) fn progress(&self, event: Progress) {
        progress::report(self.progress.as_ref(), event);
    }
}
