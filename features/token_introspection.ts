/** RFC 7662 token introspection. (skeleton: being built) */
import { defineFeature } from '../lib/feature';
import oauthBase from './oauth_base';

export default defineFeature({
  id: 'token_introspection',
  doc: 'RFC 7662 token introspection.',
  depends: [oauthBase],
});
