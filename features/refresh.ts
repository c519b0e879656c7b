/** RFC 6749 §6 refresh_token grant with rotation and reuse detection. (skeleton: being built) */
import { defineFeature } from '../lib/feature';
import oauthBase from './oauth_base';

export default defineFeature({
  id: 'refresh',
  doc: 'RFC 6749 §6 refresh_token grant with rotation and reuse detection.',
  depends: [oauthBase],
});
