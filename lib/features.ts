/** The registry: feature id → feature. Adding a feature means adding its file and one line here. */
import oauthBase from '../features/oauth_base';
import authorizationCodeGrant from '../features/authorization_code_grant';
import pkce from '../features/pkce';
import refresh from '../features/refresh';
import jwtBearer from '../features/jwt_bearer';
import clientCredentialsGrant from '../features/client_credentials_grant';
import tokenRevocation from '../features/token_revocation';
import tokenIntrospection from '../features/token_introspection';
import jwks from '../features/jwks';
import jwtAccessTokens from '../features/jwt_access_tokens';

export const FEATURES = {
  oauth_base: oauthBase,
  authorization_code_grant: authorizationCodeGrant,
  pkce,
  refresh,
  jwt_bearer: jwtBearer,
  client_credentials_grant: clientCredentialsGrant,
  token_revocation: tokenRevocation,
  token_introspection: tokenIntrospection,
  jwks,
  jwt_access_tokens: jwtAccessTokens,
} as const;

export type Features = typeof FEATURES;
/** A feature id, as given in `enable`. */
export type FeatureId = keyof Features;
