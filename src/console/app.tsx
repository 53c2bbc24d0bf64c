/** The console's shell: login, the nav the role may see, and the page for the URL. */
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, session } from './api.js';
import { PAGES } from './pages.js';
import { BASE, match, onLinkClick, usePath } from './router.js';
import { whoFrom, WhoContext, type Who } from './session.js';

export function App() {
  const [who, setWho] = useState<Who | null>(null);
  const [error, setError] = useState<string | null>(null);

  const login = async () => {
    try {
      setWho(whoFrom(await api.get('/v1/info')));
      setError(null);
    } catch (err) {
      session.clear();
      setWho(null);
      setError(err instanceof ApiError ? `${err.code}: ${err.message}` : String(err));
    }
  };
  useEffect(() => {
    if (session.token()) void login();
  }, []);

  if (!who) return <Login error={error} onToken={(t) => (session.set(t), void login())} />;
  return (
    <WhoContext.Provider value={who}>
      <Shell who={who} onLogout={() => (session.clear(), setWho(null))} />
    </WhoContext.Provider>
  );
}

function Login({ error, onToken }: { error: string | null; onToken: (t: string) => void }) {
  const [token, setToken] = useState('');
  return (
    <main class="login">
      <h1>vfleet console</h1>
      <form onSubmit={(e) => (e.preventDefault(), token.trim() && onToken(token.trim()))}>
        <label>
          API token
          <input type="password" autoComplete="off" value={token} onInput={(e) => setToken(e.currentTarget.value)} required />
        </label>
        <button type="submit">Sign in</button>
        {error && <p role="alert" class="error">{error}</p>}
      </form>
      <p class="hint">
        <code>npm start</code> prints an admin token at first run; <code>sriovctl token create --role tenant:NAME</code> makes one for a tenant.
      </p>
    </main>
  );
}

function Shell({ who, onLogout }: { who: Who; onLogout: () => void }) {
  const path = usePath();
  const allowed = PAGES.filter((p) => p.allowed(who));
  let page = null;
  for (const def of allowed) {
    const params = match(def.pattern, path);
    if (params) page = { def, params };
  }
  useEffect(() => {
    document.title = `${page?.def.title ?? 'Not found'} · vfleet`;
  }, [page?.def.title]);
  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <span class="brand">vfleet</span>
        <nav aria-label="Pages">
          <ul>
            {allowed
              .filter((p) => p.nav)
              .map((p) => (
                <li key={p.pattern}>
                  <a href={BASE + p.pattern} onClick={onLinkClick} aria-current={p === page?.def ? 'page' : undefined}>
                    {p.title}
                  </a>
                </li>
              ))}
          </ul>
        </nav>
        <span class="who">
          {who.role} {who.demo && <span class="badge">simulated fleet</span>}
          <button type="button" class="link" onClick={onLogout}>
            Sign out
          </button>
        </span>
      </header>
      <main id="main" tabIndex={-1}>
        {page ? <page.def.component params={page.params} /> : <NotFound />}
      </main>
    </>
  );
}

function NotFound() {
  return (
    <>
      <h1>Not found</h1>
      <p>There is no page at this address, or your token may not open it.</p>
    </>
  );
}
