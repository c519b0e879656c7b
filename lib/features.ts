/** The registry: feature id → feature. Adding a feature means adding its file and one line here. */
import oauthBase from '../features/oauth_base';
import clientCredentialsGrant from '../features/client_credentials_grant';

export const FEATURES = {
  oauth_base: oauthBase,
  client_credentials_grant: clientCredentialsGrant,
} as const;

export type Features = typeof FEATURES;
/** A feature id, as given in `enable`. */
export type FeatureId = keyof Features;
