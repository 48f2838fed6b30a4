// What the two node-oidc-provider servers (server.mjs on 8, oidc9_server.mjs on 9) share.

// What a node-oidc-provider did, written to the run's log by `log`, one entry per event: registrations, refused registrations and authorizations, grants (what the token
// request carried: its grant type, resource and DPoP proof; what was issued: a refresh token,
// the scope, the token type, DPoP when the token is bound to the proof's key), refused grants,
// refused revocations, revoked grants (a revoked refresh token revokes its grant), spent
// refresh tokens and server errors. No token, code or secret is logged.
export function logProviderEvents(provider, log) {
  provider.on('registration_create.success', (ctx, client) => {
    log({
      event: 'registration',
      client_id: client.clientId,
      application_type: client.applicationType,
      token_endpoint_auth_method: client.clientAuthMethod,
      grant_types: client.grantTypes,
      redirect_uris: client.redirectUris,
      scope: client.scope,
    });
  });
  provider.on('registration_create.error', (ctx, err) => {
    log({ event: 'registration_error', error: err.error, error_description: err.error_description });
  });
  provider.on('authorization.error', (ctx, err) => {
    log({ event: 'authorization_error', error: err.error, error_description: err.error_description });
  });
  provider.on('grant.success', (ctx) => {
    const p = ctx.oidc.params || {};
    log({
      event: 'grant',
      grant_type: p.grant_type,
      resource: p.resource,
      client_id: ctx.oidc.client?.clientId,
      dpop: Boolean(ctx.get('dpop')),
      issued_refresh_token: Boolean(ctx.body?.refresh_token),
      scope: ctx.body?.scope,
      token_type: ctx.body?.token_type,
    });
  });
  provider.on('grant.error', (ctx, err) => {
    const p = ctx.oidc.params || {};
    log({
      event: 'grant_error',
      grant_type: p.grant_type,
      resource: p.resource,
      dpop: Boolean(ctx.get('dpop')),
      error: err.error,
      error_description: err.error_description,
    });
  });
  provider.on('revocation.error', (ctx, err) => log({ event: 'revocation_error', error: err.error }));
  provider.on('grant.revoked', (ctx, grantId) => log({ event: 'grant_revoked', grant: String(grantId ?? '').slice(0, 6) }));
  provider.on('refresh_token.consumed', () => log({ event: 'refresh_token_consumed' }));
  provider.on('server_error', (ctx, err) => log({ event: 'server_error', message: String(err && err.stack) }));
}

// The provider's `getResourceServerInfo` for the one MCP server it issues tokens for: tokens
// for `mcpUrl` with `mcpScope`, living `accessTokenTtl` seconds, in `accessTokenFormat`
// (`opaque`, or `jwt` for a server that checks signatures); any other resource indicator is
// refused with `invalid_target` (and logged).
export function mcpResourceServer({ mcpUrl, mcpScope, accessTokenTtl, accessTokenFormat, log, errors }) {
  return async (ctx, resourceIndicator) => {
    if (resourceIndicator !== mcpUrl) {
      log({ event: 'invalid_target', resource: resourceIndicator });
      throw new errors.InvalidTarget(`unknown resource ${resourceIndicator}`);
    }
    return { scope: mcpScope, audience: mcpUrl, accessTokenTTL: accessTokenTtl, accessTokenFormat };
  };
}
