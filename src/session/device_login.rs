//! The device login (RFC 8628): device authorization, the code shown through the front end's
//! hook, polling the token endpoint until the person has approved it elsewhere, and the tokens
//! stored before anything else is done with them.

use std::time::{Duration, Instant};

use crate::callback::Canceller;
use crate::client::ClientRegistration;
use crate::device::{
    DeviceHook, DevicePoll, DeviceRequest, DeviceStep, poll_for_tokens_held,
    request_device_authorization,
};
use crate::error::{Error, ErrorKind, Result, Step, printable};
use crate::token::ClientEndpoint;

use super::cache::Presented;
use super::context::{Login, Parts, Wait, Waiting};
use super::progress::Progress;

/// Device authorization → the device step (shown by `hook`) → polling → storage.
pub(super) fn log_in(
    parts: Parts<'_>,
    hook: Option<&mut DeviceHook>,
    wait: Wait<'_>,
    login: &Login<'_>,
    client: &ClientRegistration,
) -> Result<Presented> {
    let (net, cache, requested) = (parts.net, parts.cache, parts.requested);
    // The builder refuses a device login without a hook; checked before a code is asked for.
    let hook = hook.ok_or_else(|| {
        Error::new(
            ErrorKind::Config,
            Step::Authorization,
            "a device login needs a hook that shows the code (SessionBuilder::device_login)",
        )
    })?;
    let (metadata, scopes) = (login.metadata, login.scopes);
    let endpoint = metadata
        .device_authorization_endpoint
        .as_deref()
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                Step::AuthServerDiscovery,
                format!(
                    "authorization server {} offers no device login (no \
                     device_authorization_endpoint)",
                    printable(&metadata.issuer)
                ),
            )
        })?;
    let resource = requested.resource_param(login.resource);
    let request = DeviceRequest::new(ClientEndpoint::new(endpoint, client))
        .scope(scopes)
        .resource(resource);
    let device = request_device_authorization(net.agent(), &request)?;
    let lifetime = Duration::from_secs(device.expires_in).min(wait.timeout);
    let step = DeviceStep {
        user_code: device.user_code.clone(),
        verification_uri: device.verification_uri.clone(),
        verification_uri_complete: device.verification_uri_complete.clone(),
        deadline: Instant::now() + lifetime,
    };
    hook(&step);
    net.progress(Progress::WaitingForDevice {
        verification_uri: step.verification_uri.clone(),
    });
    let (cancel, cancelled) = std::sync::mpsc::channel::<()>();
    let waiting = Waiting::start(wait.slot, Canceller::new(move || cancel.send(()).is_ok()));
    let poll = DevicePoll::new(
        login.token_endpoint(client),
        &device.device_code,
        step.deadline,
        &cancelled,
    )
    .interval(device.interval)
    .resource(resource);
    let polled = poll_for_tokens_held(net.agent(), &poll, || cache.hold());
    drop(waiting);
    let (tokens, held) = polled?;
    let presented = login.keep(cache, resource, client, tokens);
    drop(held);
    Ok(presented)
}
