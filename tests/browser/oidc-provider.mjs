// A real OpenID provider for Baton's sign-in tests: panva's oidc-provider
// (OpenID Certified), from npm, with its development login form (any user
// name signs in). Started by tests/src/oidc.rs; prints `READY <issuer>`.
//
// Environment:
//   BATON_URL      where Baton is reached (its /auth/callback is the one
//                  redirect URI, /?signed_out=1 the page after sign-out)
//   CLIENT_ID      Baton's client id (default baton)
//   CLIENT_SECRET  its secret (default baton-secret)
//   PORT           where to listen on 127.0.0.1 (default: any free port)
//
// The accounts below stand for staff: some carry Baton's own claims, some
// only a group the role mapping (oidc-roles.toml) turns into a role and
// scope (a team, a whole trust's wards, the care transfer hub, the ICB), one
// nothing Baton can use. Any other login signs in with no claims beyond its name.
//
// For the refusal tests, `POST /test/tamper?mode=signature|audience` makes
// the next token response carry an ID token with a broken signature, or
// one validly signed by this provider for another audience.

import http from 'node:http';

// The provider warns that it runs with its development defaults (in-memory
// store, login form, this Node version): true, and meant, for a test.
const warn = console.warn;
console.warn = (...args) => { if (!String(args[0]).includes('oidc-provider WARNING')) warn(...args); };
const { default: Provider } = await import('oidc-provider');
import * as jose from 'jose';

const BATON = process.env.BATON_URL;
if (!BATON) { console.error('BATON_URL is required'); process.exit(2); }
const CLIENT_ID = process.env.CLIENT_ID || 'baton';
const CLIENT_SECRET = process.env.CLIENT_SECRET || 'baton-secret';

const ACCOUNTS = {
  'wendy.ward': { name: 'Wendy Ward', role: 'ward', hospital: 'POOLE' },
  'rita.reablement': { name: 'Rita Reablement', groups: ['staff', 'baton-reablement-east'] },
  'tom.trust': { name: 'Tom Trust', groups: ['staff', 'baton-uhd-wards'] },
  'hana.hub': { name: 'Hana Hub', groups: ['staff', 'baton-dorset-hub'] },
  'sian.system': { name: 'Sian System', groups: ['staff', 'baton-icb'] },
  'adam.admin': { name: 'Adam Admin', role: 'admin' },
  'nobody.special': { name: 'Nobody Special', groups: ['staff'] },
};

const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const signing = { ...(await jose.exportJWK(privateKey)), kid: 'test-key-1', alg: 'RS256', use: 'sig' };

const server = http.createServer();
await new Promise((resolve) => server.listen(Number(process.env.PORT || 0), '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    redirect_uris: [`${BATON}/auth/callback`],
    post_logout_redirect_uris: [`${BATON}/?signed_out=1`],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [signing] },
  claims: {
    openid: ['sub'],
    profile: ['name', 'role', 'hospital', 'team', 'groups'],
  },
  // Baton reads its claims from the ID token, as from CIS2's.
  conformIdTokenClaims: false,
  async findAccount(ctx, id) {
    const claims = ACCOUNTS[id] || { name: id };
    return { accountId: id, async claims() { return { sub: id, ...claims }; } };
  },
  // Baton is a first-party client: no consent screen.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile');
    grant.addOIDCClaims(['name', 'role', 'hospital', 'team', 'groups']);
    await grant.save();
    return grant;
  },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  ttl: { AuthorizationCode: 60, IdToken: 600, Session: 3600, Interaction: 600, Grant: 3600 },
});

let tamper = null;
provider.use(async (ctx, next) => {
  if (ctx.path === '/test/tamper' && ctx.method === 'POST') {
    tamper = ctx.query.mode || null;
    ctx.status = 204;
    return;
  }
  await next();
  if (ctx.path === '/token' && tamper && ctx.body && ctx.body.id_token) {
    const [header, payload, signature] = ctx.body.id_token.split('.');
    if (tamper === 'signature') {
      const flipped = (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1);
      ctx.body = { ...ctx.body, id_token: `${header}.${payload}.${flipped}` };
    } else if (tamper === 'audience') {
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
      const token = await new jose.SignJWT({ ...claims, aud: 'someone-else' })
        .setProtectedHeader({ alg: 'RS256', kid: signing.kid, typ: 'JWT' })
        .sign(privateKey);
      ctx.body = { ...ctx.body, id_token: token };
    }
    tamper = null;
  }
});
provider.on('server_error', (ctx, error) => console.error('provider error', error));

server.on('request', provider.callback());
console.log(`READY ${issuer}`);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
