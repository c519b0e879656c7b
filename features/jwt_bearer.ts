/** RFC 7523 JWT bearer assertion grant and client authentication. (skeleton: being built) */
import { defineFeature } from '../lib/feature';
import oauthBase from './oauth_base';

export default defineFeature({
  id: 'jwt_bearer',
  doc: 'RFC 7523 JWT bearer assertion grant and client authentication.',
  depends: [oauthBase],
});
