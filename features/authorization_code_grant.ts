/** RFC 6749 §4.1 authorization code grant with the /authorize endpoint. (skeleton: being built) */
import { defineFeature } from '../lib/feature';
import oauthBase from './oauth_base';

export default defineFeature({
  id: 'authorization_code_grant',
  doc: 'RFC 6749 §4.1 authorization code grant with the /authorize endpoint.',
  depends: [oauthBase],
});
