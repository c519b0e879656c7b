/** RFC 7636 PKCE for the authorization code grant. (skeleton: being built) */
import { defineFeature } from '../lib/feature';
import authorizationCodeGrant from './authorization_code_grant';

export default defineFeature({
  id: 'pkce',
  doc: 'RFC 7636 PKCE for the authorization code grant.',
  depends: [authorizationCodeGrant],
});
