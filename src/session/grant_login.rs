//! A login without a person: client credentials (RFC 6749 §4.4), a JWT bearer assertion
//! (RFC 7523), or a token exchange at the identity provider for an identity assertion then a
//! JWT bearer grant with it; with the configured client. Nothing is opened, and a rejected grant
//! is not tried again (a workload identity token the server refuses would be refused again).

use crate::client::{AuthMethod, ClientRegistration, ConfiguredClient};
use crate::discovery::AuthServerMetadata;
use crate::error::{Error, ErrorKind, Result, Step, printable};
use crate::grant::{self, Grant, GrantRequest, TokenExchange};
use crate::token::ClientEndpoint;

use super::cache::Presented;
use super::context::{Login, Parts};
use super::progress::Progress;

/// The client of `grant` at the server of `metadata`: the configured one; for a JWT bearer
/// grant, none when none is configured (the assertion may be the only credential, RFC 7523
/// §3.1).
pub(super) fn client(
    grant: &Grant,
    configured: &ConfiguredClient,
    metadata: &AuthServerMetadata,
) -> Result<ClientRegistration> {
    match (grant, configured.for_server(metadata)) {
        (_, Some(client)) => Ok(client),
        (Grant::JwtBearer(_), None) => Ok(ClientRegistration::configured(
            &metadata.issuer,
            "",
            None,
            AuthMethod::None,
        )),
        (_, None) => Err(Error::new(
            ErrorKind::Config,
            Step::Grant,
            "this grant needs a configured client (SessionBuilder::client_id)",
        )),
    }
}

/// The grant at the token endpoint → storage.
pub(super) fn obtain(
    parts: Parts<'_>,
    grant: &Grant,
    login: &Login<'_>,
    client: &ClientRegistration,
) -> Result<Presented> {
    let (net, cache, requested) = (parts.net, parts.cache, parts.requested);
    let (metadata, scopes) = (login.metadata, login.scopes);
    let step = Step::Grant;
    let resource = requested.resource_param(login.resource);
    let request = GrantRequest::new(login.token_endpoint(client))
        .scope(scopes)
        .resource(resource);
    net.progress(Progress::Granting {
        token_endpoint: metadata.token_endpoint.clone(),
    });
    let held = cache.hold();
    let tokens = match grant {
        Grant::ClientCredentials => grant::client_credentials(net.agent(), &request)?,
        Grant::JwtBearer(assertion) => {
            grant::jwt_bearer(net.agent(), &request, &assertion.read(step)?)?
        }
        Grant::IdentityAssertion(ia) => {
            let idp_client = ia
                .idp_client
                .clone()
                .unwrap_or_else(|| ClientRegistration::configured("", "", None, AuthMethod::None));
            log::info!(
                "token exchange at the identity provider {}",
                printable(&ia.idp_token_endpoint)
            );
            let subject_token = ia.id_token.read(Step::TokenExchange)?;
            let idp = ClientEndpoint::new(&ia.idp_token_endpoint, &idp_client);
            let exchange =
                TokenExchange::new(idp, &subject_token, &metadata.issuer, login.resource)
                    .scope(scopes);
            let id_jag = grant::exchange_for_id_jag(net.agent(), &exchange)?;
            grant::jwt_bearer(net.agent(), &request, &id_jag.token)?
        }
        Grant::AuthorizationCode | Grant::DeviceCode => {
            return Err(Error::new(
                ErrorKind::Config,
                step,
                "a person's login has no form without a person",
            ));
        }
    };
    let presented = login.keep(cache, resource, client, tokens);
    drop(held);
    Ok(presented)
}
