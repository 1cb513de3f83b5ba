// A real OpenID Provider (the `oidc-provider` package) for the gateway's sign-in tests.
//
//   node idp.mjs CONFIG.json
//
// CONFIG.json:
//   {
//     "port": 0,                         // 0 picks a free port
//     "issuer": "http://127.0.0.1:PORT", // optional; defaults to the listening address
//     "clients": [{"client_id", "client_secret", "redirect_uris": [...],
//                  "token_endpoint_auth_method": "client_secret_basic" | "client_secret_post"}],
//     "users": [{"sub", "email", "email_verified", "name", "groups": [...], "mfa": false,
//                "azp"}],                // azp: optional, the client its id_tokens say they are for
//     "accessTokenTTL": 3600, "idTokenTTL": 3600, "refreshTokenTTL": 86400,   // seconds, optional
//     "rotateRefreshTokens": true,       // optional: a refresh grant returns a new refresh token
//     "groupsNeedScope": false           // optional: release `groups` only for the `groups` scope
//   }
//
// It listens on 127.0.0.1 only and prints one line, `listening on http://127.0.0.1:PORT`, on
// stdout once it is ready; everything else (a line per request, warnings) goes to stderr.
//
// What it does: the authorization code flow with PKCE (S256, required), client authentication by
// `client_secret_basic` or `client_secret_post` (only the one the client is registered with), the
// claims `email`, `email_verified`, `name` and `groups`, the sign-in's `amr` (["pwd"], or
// ["pwd", "otp"] for a user signed in with a second factor) and `auth_time`, and a refresh token whenever the request
// asks for `offline_access` (no consent screen: signing in grants everything asked for). Refresh
// grants re-issue the id_token.
//
// Sign-in pages, simple enough for a test to drive without a browser:
//   GET  /interaction/:uid        an HTML form with one input, `login` (the user's `sub`)
//   POST /interaction/:uid/login  `login=<sub>`: signs that user in and finishes the request;
//                                 an unknown or disabled user gets the form again with an error
//
// Test controls (answered for loopback peers only):
//   POST /__test/users/:sub/disable   the user can no longer sign in, and every further refresh
//                                     grant for them fails with `invalid_grant`
//   POST /__test/users/:sub/enable    undoes that
//   POST /__test/keys/rotate          a new signing key replaces the old one (the JWKS names only
//                                     the new key); tokens, grants and sessions carry over
//   POST /__test/id_token/omit        token answers (code and refresh) carry no id_token
//   POST /__test/id_token/include     undoes that
//   POST /__test/users/:sub/mfa       the user's next sign-ins pass a second factor (amr pwd+otp)
//   POST /__test/users/:sub/nomfa     undoes that
// To simulate the IdP being down, kill the process.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';

// The in-memory storage shared by every provider instance (the default gives each its own), so
// tokens and grants outlive a key rotation, which swaps the instance.
class SharedMemoryAdapter extends MemoryAdapter {}

// stdout carries the readiness line only.
console.log = console.error;
console.info = console.error;

const configPath = process.argv[2];
if (!configPath) {
  console.error('usage: node idp.mjs CONFIG.json');
  process.exit(2);
}
const config = JSON.parse(readFileSync(configPath, 'utf8'));

const users = new Map((config.users ?? []).map((u) => [u.sub, u]));
const disabled = new Set();
// Kept across key rotations, so browser sessions survive them.
const cookieKeys = [randomBytes(32).toString('base64url')];
let omitIdToken = false;

const SCOPES = ['openid', 'offline_access', 'profile', 'email', 'groups'];
const CLAIMS = ['sub', 'email', 'email_verified', 'name', 'groups'];

function activeUser(sub) {
  if (typeof sub !== 'string' || disabled.has(sub)) return undefined;
  return users.get(sub);
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function isLoopback(req) {
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith('127.') || a === '::1' || a.startsWith('::ffff:127.');
}

function send(res, status, type, body, headers = {}) {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(body);
}

function readForm(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > 64 * 1024) {
        reject(new Error('form too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

function loginPage(uid, clientId, error) {
  const problem = error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head>
<body>
<h1>Sign in</h1>
<p>to continue to ${escapeHtml(clientId)}</p>
${problem}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label>User <input name="login" autocomplete="username" autofocus required></label>
<button type="submit">Sign in</button>
</form>
</body></html>
`;
}

function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: randomBytes(8).toString('hex'), use: 'sig', alg: 'RS256' };
}

function providerFor(issuer, key) {
  const claims = {
    openid: ['sub', 'amr', 'auth_time', 'azp'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  };
  // Most company IdPs put the groups claim in every id_token of an app configured for it, whatever
  // the scope; `groupsNeedScope` gives the stricter kind, which wants the `groups` scope.
  if (!config.groupsNeedScope) claims.openid.push('groups');

  const clients = (config.clients ?? []).map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: c.redirect_uris,
    token_endpoint_auth_method: c.token_endpoint_auth_method ?? 'client_secret_basic',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  }));

  const provider = new Provider(issuer, {
    clients,
    responseTypes: ['code'],
    adapter: SharedMemoryAdapter,
    jwks: { keys: [key] },
    cookies: { keys: cookieKeys },
    scopes: SCOPES,
    claims,
    // The token endpoint's id_token carries the scope's claims too, as company IdPs do.
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      userinfo: { enabled: true },
    },
    clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
    pkce: { required: () => true },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(_ctx, sub) {
      const user = activeUser(sub);
      if (!user) return undefined;
      return {
        accountId: user.sub,
        async claims() {
          const out = { sub: user.sub };
          for (const k of ['email', 'email_verified', 'name', 'groups', 'azp']) {
            if (user[k] !== undefined) out[k] = user[k];
          }
          return out;
        },
      };
    },
    // A request from a browser that is already signed in reuses (and widens) its grant, so no
    // consent step ever shows.
    async loadExistingGrant(ctx) {
      const { client, session, result, account } = ctx.oidc;
      const grantId = result?.consent?.grantId || session.grantIdFor(client.clientId);
      let grant = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
      if (!grant) {
        grant = new ctx.oidc.provider.Grant({ accountId: account.accountId, clientId: client.clientId });
      }
      grant.addOIDCScope(SCOPES.join(' '));
      grant.addOIDCClaims(CLAIMS);
      await grant.save();
      return grant;
    },
    issueRefreshToken: async (_ctx, client, code) => client.grantTypeAllowed('refresh_token')
      && code.scopes.has('offline_access'),
    rotateRefreshToken: config.rotateRefreshTokens ?? true,
    ttl: {
      AccessToken: config.accessTokenTTL ?? 3600,
      AuthorizationCode: 60,
      IdToken: config.idTokenTTL ?? 3600,
      RefreshToken: config.refreshTokenTTL ?? 14 * 24 * 3600,
      Interaction: 600,
      Session: 24 * 3600,
      Grant: 14 * 24 * 3600,
    },
    renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = `<!doctype html><html><body><h1>Error</h1><pre>${escapeHtml(JSON.stringify(out, null, 2))}</pre></body></html>`;
    },
  });

  provider.on('server_error', (_ctx, err) => console.error('idp server_error:', err));
  for (const event of ['grant.error', 'authorization.error']) {
    provider.on(event, (_ctx, err) => console.error(
      `idp ${event}: ${err.message} (${err.error_description ?? ''}${err.error_detail ? `; ${err.error_detail}` : ''})`,
    ));
  }
  return provider;
}

const TOKEN_PATHS = new Set(['/token', '/token/revocation', '/token/introspection']);
const authMethods = new Map((config.clients ?? []).map((c) => [
  c.client_id,
  c.token_endpoint_auth_method ?? 'client_secret_basic',
]));

function clientAuthRefusal(req) {
  const header = req.headers.authorization ?? '';
  if (/^basic /i.test(header)) {
    let id;
    try {
      const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
      id = decodeURIComponent(decoded.slice(0, decoded.indexOf(':')));
    } catch {
      return undefined; // malformed: oidc-provider answers it
    }
    const method = authMethods.get(id);
    if (method && method !== 'client_secret_basic') {
      return `client ${id} is registered for ${method}, not client_secret_basic`;
    }
    return undefined;
  }
  const methods = new Set(authMethods.values());
  if (methods.size === 1 && methods.has('client_secret_basic')) {
    return 'clients here are registered for client_secret_basic: send the secret in the Authorization header';
  }
  return undefined;
}

let provider;
let callback;
let issuer;

// Rewrites the JSON answer about to be sent on `res` without its `id_token`.
function dropIdToken(res) {
  const end = res.end.bind(res);
  const chunks = [];
  res.write = (chunk) => {
    chunks.push(Buffer.from(chunk));
    return true;
  };
  res.end = (chunk, ...rest) => {
    if (chunk && typeof chunk !== 'function') chunks.push(Buffer.from(chunk));
    let body = Buffer.concat(chunks);
    try {
      const json = JSON.parse(body.toString('utf8'));
      if (json.id_token !== undefined) {
        delete json.id_token;
        body = Buffer.from(JSON.stringify(json));
        res.setHeader('Content-Length', body.length);
      }
    } catch {
      // not JSON: as it was
    }
    return end(body, ...rest.filter((r) => typeof r === 'function'));
  };
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://idp.invalid');
  const path = url.pathname;
  const parts = path.split('/').filter(Boolean);

  if (parts[0] === '__test') {
    if (!isLoopback(req)) return send(res, 403, 'text/plain', 'forbidden\n');
    if (req.method === 'POST' && parts[1] === 'users' && parts.length === 4) {
      const sub = decodeURIComponent(parts[2]);
      if (!users.has(sub)) return send(res, 404, 'text/plain', 'no such user\n');
      if (parts[3] === 'disable') disabled.add(sub);
      else if (parts[3] === 'enable') disabled.delete(sub);
      else if (parts[3] === 'mfa' || parts[3] === 'nomfa') users.get(sub).mfa = parts[3] === 'mfa';
      else return send(res, 404, 'text/plain', 'not found\n');
      return send(res, 204, 'text/plain', '');
    }
    if (req.method === 'POST' && path === '/__test/keys/rotate') {
      // oidc-provider's keys are fixed per instance: a new instance takes over. Its in-memory
      // storage is shared by every instance, so tokens and grants issued so far stay valid.
      provider = providerFor(issuer, signingKey());
      callback = provider.callback();
      return send(res, 204, 'text/plain', '');
    }
    if (req.method === 'POST' && (path === '/__test/id_token/omit' || path === '/__test/id_token/include')) {
      omitIdToken = path.endsWith('/omit');
      return send(res, 204, 'text/plain', '');
    }
    return send(res, 404, 'text/plain', 'not found\n');
  }

  if (omitIdToken && req.method === 'POST' && path === '/token') dropIdToken(res);

  if (parts[0] === 'interaction' && parts.length >= 2) {
    const uid = parts[1];
    if (req.method === 'GET' && parts.length === 2) {
      const details = await provider.interactionDetails(req, res);
      if (details.uid !== uid) return send(res, 400, 'text/plain', 'interaction mismatch\n');
      return send(res, 200, 'text/html; charset=utf-8', loginPage(uid, details.params.client_id));
    }
    if (req.method === 'POST' && parts.length === 3 && parts[2] === 'login') {
      const details = await provider.interactionDetails(req, res);
      if (details.uid !== uid) return send(res, 400, 'text/plain', 'interaction mismatch\n');
      const form = await readForm(req);
      const login = (form.get('login') ?? '').trim();
      const user = activeUser(login);
      if (!user) {
        const why = users.has(login) ? 'That account is disabled.' : `Unknown user "${login}".`;
        return send(res, 200, 'text/html; charset=utf-8', loginPage(uid, details.params.client_id, why));
      }
      // Signing in is consent too: the grant holds every scope and claim this IdP knows, and a
      // token still carries only the scopes its request asked for.
      const grant = new provider.Grant({ accountId: user.sub, clientId: details.params.client_id });
      grant.addOIDCScope(SCOPES.join(' '));
      grant.addOIDCClaims(CLAIMS);
      const grantId = await grant.save();
      return provider.interactionFinished(
        req,
        res,
        {
          login: { accountId: user.sub, amr: user.mfa ? ['pwd', 'otp'] : ['pwd'] },
          consent: { grantId },
        },
        { mergeWithLastSubmission: false },
      );
    }
  }

  // oidc-provider takes a client's secret by either method whatever the client registered; like
  // stricter IdPs, this one holds each client to its registered method where it can tell
  // without reading the body (the header's presence, or every client using the same method).
  if (req.method === 'POST' && TOKEN_PATHS.has(path)) {
    const refusal = clientAuthRefusal(req);
    if (refusal) {
      console.error(`idp client auth refused: ${refusal}`);
      return send(res, 401, 'application/json', JSON.stringify({
        error: 'invalid_client',
        error_description: refusal,
      }));
    }
  }

  // oidc-provider honours `offline_access` only with `prompt=consent` (OpenID Connect Core §11);
  // company IdPs commonly issue the refresh token without it, and so does this one: a request for
  // `offline_access` is treated as asking for consent, which signing in here always gives.
  if (req.method === 'GET' && path === '/auth') {
    const scope = (url.searchParams.get('scope') ?? '').split(' ');
    const prompt = (url.searchParams.get('prompt') ?? '').split(' ').filter(Boolean);
    if (scope.includes('offline_access') && !prompt.includes('none') && !prompt.includes('consent')) {
      url.searchParams.set('prompt', [...prompt, 'consent'].join(' '));
      req.url = `${url.pathname}${url.search}`;
    }
  }

  return callback(req, res);
}

const server = createServer((req, res) => {
  const started = Date.now();
  res.on('finish', () => {
    console.error(`idp ${req.method} ${req.url.split('?')[0]} ${res.statusCode} ${Date.now() - started}ms`);
  });
  handle(req, res).catch((err) => {
    console.error('idp error:', err);
    if (!res.headersSent) {
      const status = err.statusCode ?? err.status ?? 500;
      send(res, status, 'text/plain', `${err.name}: ${err.error_description ?? err.message}\n`);
    } else {
      res.destroy();
    }
  });
});

server.listen(config.port ?? 0, '127.0.0.1', () => {
  const { port } = server.address();
  const base = `http://127.0.0.1:${port}`;
  issuer = config.issuer ?? base;
  provider = providerFor(issuer, signingKey());
  callback = provider.callback();
  process.stdout.write(`listening on ${base}\n`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
