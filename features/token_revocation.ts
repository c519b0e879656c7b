/** RFC 7009 token revocation. (skeleton: being built) */
import { defineFeature } from '../lib/feature';
import oauthBase from './oauth_base';

export default defineFeature({
  id: 'token_revocation',
  doc: 'RFC 7009 token revocation.',
  depends: [oauthBase],
});
