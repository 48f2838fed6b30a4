//! The browser login (OAuth 2.1 authorization code with PKCE): the authorization URL, the
//! browser (or the front end's hook), the callback on the loopback listener, the code
//! exchange, and the tokens stored before anything else is done with them.

use std::time::Instant;

use crate::authorize::build_authorization_url;
use crate::browser::{AuthorizeHook, BrowserStep, open_browser};
use crate::callback::CallbackExpectation;
use crate::error::{Result, Step};
use crate::pkce::PkceVerifier;
use crate::token::{self, CodeExchange};

use super::cache::Presented;
use super::clients::ChosenClient;
use super::context::{Login, Parts, Wait, Waiting};
use super::progress::Progress;

/// Browser → callback → exchange → storage, with a chosen client and its listener; `hook`
/// shows the browser step instead of opening the browser.
pub(super) fn log_in(
    parts: Parts<'_>,
    hook: Option<&mut AuthorizeHook>,
    wait: Wait<'_>,
    login: &Login<'_>,
    chosen: ChosenClient,
) -> Result<Presented> {
    let (net, cache, requested) = (parts.net, parts.cache, parts.requested);
    let metadata = login.metadata;
    let ChosenClient {
        client,
        mut listener,
        ..
    } = chosen;
    let verifier = PkceVerifier::generate()?;
    let state_value = crate::secret::random_token(32, Step::Authorization)?;
    let redirect_uri = listener.redirect_uri().to_string();
    let resource = requested.resource_param(login.resource);
    let challenge = verifier.challenge();
    let request = requested.authorization_request(
        login,
        &client.client_id,
        &redirect_uri,
        &state_value,
        &challenge,
    );
    let url = build_authorization_url(&request)?;
    let launch_url = listener.launch_url(&url)?;
    let step = BrowserStep::new(
        url,
        launch_url,
        listener.redirect_uri().clone(),
        Instant::now() + wait.timeout,
        listener.paster(),
    );
    net.progress(Progress::WaitingForBrowser {
        redirect_uri: listener.redirect_uri().clone(),
    });
    match hook {
        Some(hook) => hook(&step),
        None => open_browser(&step.launch_url)?,
    }
    let waiting = Waiting::start(wait.slot, listener.canceller());
    let expect = CallbackExpectation::new(
        &state_value,
        &metadata.issuer,
        metadata.authorization_response_iss_parameter_supported,
    );
    let code = listener.wait(&expect, step.remaining());
    drop(waiting);
    let code = code?;
    net.progress(Progress::Exchanging);
    let held = cache.hold();
    let exchange = CodeExchange::new(
        login.token_endpoint(&client),
        &code,
        &verifier,
        &redirect_uri,
    )
    .resource(resource);
    let tokens = token::exchange_code(net.agent(), &exchange)?;
    let presented = login.keep(cache, resource, &client, tokens);
    drop(held);
    Ok(presented)
}
