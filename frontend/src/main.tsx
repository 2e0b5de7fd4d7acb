import { type ComponentChildren, render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, forgetSession, getToken, isSignedIn, setToken, setUnauthorizedHandler } from "./api/client";
import { atLeast, forgetMe, useMe } from "./lib/me";
import { navigate, useRoute } from "./lib/router";
import { Compare } from "./pages/Compare";
import { Datasets } from "./pages/Datasets";
import { ExperimentPage } from "./pages/ExperimentPage";
import { Experiments } from "./pages/Experiments";
import { Models } from "./pages/Models";
import { Launch } from "./pages/Launch";
import { Audit } from "./pages/Audit";
import { AFTER_LOGIN, Login } from "./pages/Login";
import { RunPage } from "./pages/run/RunPage";
import { Runs } from "./pages/Runs";
import { Tokenizers } from "./pages/Tokenizers";
import { Notifications } from "./pages/Notifications";
import { Settings } from "./pages/Settings";
import { Tokens } from "./pages/Tokens";
import { Users } from "./pages/Users";
import { Workers } from "./pages/Workers";
import "./styles.css";

let loginReason: string | null = null;

/** Go to the login page, remembering where the user was headed. */
function toLogin(): void {
  if (!location.hash.startsWith("#/login")) sessionStorage.setItem(AFTER_LOGIN, location.hash);
  navigate("/login");
}

setUnauthorizedHandler(() => {
  if (getToken()) {
    setToken(null);
    loginReason = "The server rejected the saved token; sign in again.";
  } else if (isSignedIn()) {
    forgetSession();
    loginReason = "Your sign-in has ended; sign in again.";
  } else return;
  forgetMe();
  toLogin();
});

const NAV: [string, string][] = [
  ["runs", "Runs"],
  ["launch", "Launch"],
  ["tokenizers", "Tokenizers"],
  ["datasets", "Datasets"],
  ["models", "Models"],
  ["compare", "Compare"],
  ["experiments", "Experiments"],
  ["workers", "Workers"],
  ["notifications", "Notifications"],
];

/** Pages of the admins (the API refuses the others anyway). */
const ADMIN_NAV: [string, string][] = [
  ["users", "Users"],
  ["audit", "Audit"],
  ["settings", "Settings"],
];

/** Every first path segment the app answers; anything else is the not-found page. */
const KNOWN_PAGES = new Set([...NAV.map(([p]) => p), ...ADMIN_NAV.map(([p]) => p), "tokens", "login"]);

function NotFound({ hash }: { hash: string }) {
  return (
    <section class="page" data-testid="not-found">
      <h1>Page not found</h1>
      <p>
        No page answers <code>{hash}</code>. <a href="#/runs">Go to the runs</a>.
      </p>
    </section>
  );
}

function App() {
  const route = useRoute();
  const [, force] = useState(0);
  // Narrow screens: the nav and Log out fold behind a Menu button (closed again on navigation).
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => setMenuOpen(false), [route.path.join("/")]);
  const page = route.path[0] ?? "runs";
  const authed = isSignedIn();
  const me = useMe();

  useEffect(() => {
    if (!authed && page !== "login") toLogin();
  }, [authed, page]);

  if (page === "login" || !authed) {
    const reason = loginReason;
    loginReason = null;
    return <Login reason={reason} />;
  }

  const logout = () => {
    if (!getToken()) void api("/session", { method: "DELETE" }).catch(() => undefined);
    forgetSession();
    forgetMe();
    setToken(null);
    sessionStorage.removeItem(AFTER_LOGIN);
    force((n) => n + 1);
    navigate("/login");
  };

  let body: ComponentChildren;
  if (route.malformed || !KNOWN_PAGES.has(page)) body = <NotFound hash={location.hash} />;
  else if (page === "runs" && route.path[1]) body = <RunPage key={route.path[1]} id={route.path[1]} />;
  else if (page === "launch")
    body = (
      <Launch key={route.query.toString()} from={route.query.get("from")} prefill={{ tokenizer: route.query.get("tokenizer"), base: route.query.get("base"), dataset: route.query.get("dataset") }} />
    );
  else if (page === "tokenizers") body = <Tokenizers selected={route.path[1] ?? null} />;
  else if (page === "datasets") body = <Datasets key={route.query.toString()} selected={route.path[1] ?? null} sub={route.path[2] ?? null} query={route.query} />;
  else if (page === "models") body = <Models selected={route.path[1] ?? null} />;
  else if (page === "compare") body = <Compare ids={(route.query.get("ids") ?? "").split(",").filter(Boolean)} />;
  else if (page === "workers") body = <Workers />;
  else if (page === "experiments" && route.path[1]) body = <ExperimentPage key={route.path[1]} id={route.path[1]} />;
  else if (page === "experiments") body = <Experiments />;
  else if (page === "users") body = <Users />;
  else if (page === "audit") body = <Audit />;
  else if (page === "tokens") body = <Tokens />;
  else if (page === "settings") body = <Settings />;
  else if (page === "notifications") body = <Notifications />;
  else body = <Runs query={route.query} />;

  return (
    <>
      {/* A plain #main link would change the hash route, so move focus by hand. */}
      {/* biome-ignore lint/a11y/useValidAnchor: a skip link, kept a link for screen readers */}
      <a
        class="skip"
        href="#/"
        onClick={(e) => {
          e.preventDefault();
          document.getElementById("main")?.focus();
        }}
      >
        Skip to content
      </a>
      <header class="topbar">
        <a class="brand" href="#/runs">
          cpt-panel
        </a>
        <button type="button" class="btn btn-small menu-toggle" aria-expanded={menuOpen} aria-controls="main-nav" onClick={() => setMenuOpen(!menuOpen)}>
          Menu
        </button>
        <div id="main-nav" class={`nav-area${menuOpen ? " open" : ""}`}>
          <nav aria-label="Main">
            {[...NAV, ...(atLeast(me, "admin") ? ADMIN_NAV : [])].map(([key, label]) => (
              <a key={key} href={`#/${key}`} aria-current={page === key ? "page" : undefined}>
                {label}
              </a>
            ))}
          </nav>
          {me ? (
            <a class="whoami muted small" href="#/tokens" title="Your API tokens" data-testid="whoami">
              {me.name} · {me.role}
            </a>
          ) : null}
          <button type="button" class="btn btn-small btn-ghost" onClick={logout}>
            Log out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {body}
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
