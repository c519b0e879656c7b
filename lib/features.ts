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
import dynamicClientRegistration from '../features/dynamic_client_registration';
import grantManagement from '../features/grant_management';
import resourceIndicators from '../features/resource_indicators';
import clientIdMetadataDocuments from '../features/client_id_metadata_documents';
import oidc from '../features/oidc';

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
  dynamic_client_registration: dynamicClientRegistration,
  grant_management: grantManagement,
  resource_indicators: resourceIndicators,
  client_id_metadata_documents: clientIdMetadataDocuments,
  oidc,
} as const;

export type Features = typeof FEATURES;
/** A feature id, as given in `enable`. */
export type FeatureId = keyof Features;
