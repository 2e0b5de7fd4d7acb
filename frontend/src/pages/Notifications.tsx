// Notifications: one's webhooks (Slack, Discord or a generic JSON body) and e-mail addresses,
// told when runs end or an experiment finishes; a test call; what the outbox delivered or not.

import { useState } from "preact/hooks";
import { api, ApiError, post } from "../api/client";
import type { Channel, Delivery } from "../api/types";
import { POLL, useApi } from "../api/usePoll";

const EVENTS = ["succeeded", "failed", "stalled", "cancelled", "experiment_finished"] as const;

export function Notifications() {
  const channels = useApi<Channel[]>("/notifications/channels");
  const deliveries = useApi<Delivery[]>("/notifications/deliveries?limit=20", { every: POLL.idle });
  const [name, setName] = useState("");
  const [kind, setKind] = useState<"webhook" | "email">("webhook");
  const [url, setUrl] = useState("");
  const [format, setFormat] = useState<"slack" | "discord" | "generic">("slack");
  const [to, setTo] = useState("");
  const [runId, setRunId] = useState("");
  const [events, setEvents] = useState<string[]>(["succeeded", "failed", "stalled", "cancelled"]);
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const create = async (e: Event) => {
    e.preventDefault();
    setError(null);
    const body: Record<string, unknown> = { name, kind, events, run_id: runId || null };
    if (kind === "webhook") Object.assign(body, { url, format });
    else body.to = to.split(/[\s,;]+/).filter(Boolean);
    try {
      await post<Channel>("/notifications/channels", body);
      setName("");
      setUrl("");
      setTo("");
      channels.reload();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  };
  const test = async (c: Channel) => {
    const r = await post<{ delivered: boolean; error: string | null }>(`/notifications/channels/${c.id}/test`);
    setMessage(r.delivered ? `${c.name}: test message delivered` : `${c.name}: not delivered (${r.error})`);
    deliveries.reload();
  };
  const remove = async (c: Channel) => {
    await api(`/notifications/channels/${c.id}`, { method: "DELETE" });
    channels.reload();
  };
  const toggle = (ev: string) => setEvents((old) => (old.includes(ev) ? old.filter((x) => x !== ev) : [...old, ev]));

  return (
    <section class="page" data-testid="notifications">
      <h1>Notifications</h1>
      <section class="card">
        <h2>Channels</h2>
        {message ? (
          <p class="muted" role="status" data-testid="notify-message">
            {message}
          </p>
        ) : null}
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Where</th>
              <th>Events</th>
              <th>Run</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {(channels.data ?? []).map((c) => (
              <tr key={c.id}>
                <td>{c.name}</td>
                <td>{c.kind === "webhook" ? `${c.format} webhook to ${c.host}` : c.to.join(", ")}</td>
                <td>{c.events.join(", ")}</td>
                <td>{c.run_id ? <a href={`#/runs/${c.run_id}`}>{c.run_id}</a> : "every run of yours"}</td>
                <td>
                  <button type="button" onClick={() => test(c)}>
                    Test
                  </button>{" "}
                  <button type="button" onClick={() => remove(c)}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <form class="try-form" onSubmit={create}>
          <label>
            Name
            <input required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
          </label>
          <label>
            Kind
            <select value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value as "webhook" | "email")}>
              <option value="webhook">Webhook</option>
              <option value="email">E-mail</option>
            </select>
          </label>
          {kind === "webhook" ? (
            <>
              <label>
                URL (kept encrypted)
                <input type="url" value={url} onInput={(e) => setUrl((e.target as HTMLInputElement).value)} placeholder="https://hooks.slack.com/services/…" />
              </label>
              <label>
                Body
                <select value={format} onChange={(e) => setFormat((e.target as HTMLSelectElement).value as "slack" | "discord" | "generic")}>
                  <option value="slack">Slack</option>
                  <option value="discord">Discord</option>
                  <option value="generic">Generic JSON (summary + link)</option>
                </select>
              </label>
            </>
          ) : (
            <label>
              To
              <input value={to} onInput={(e) => setTo((e.target as HTMLInputElement).value)} placeholder="ml-team@example.org" />
            </label>
          )}
          <label>
            Run (empty: every run of yours)
            <input value={runId} onInput={(e) => setRunId((e.target as HTMLInputElement).value)} placeholder="r-…" />
          </label>
          <fieldset>
            <legend>Events</legend>
            {EVENTS.map((ev) => (
              <label key={ev} class="inline">
                <input type="checkbox" checked={events.includes(ev)} onChange={() => toggle(ev)} /> {ev.replace("_", " ")}
              </label>
            ))}
          </fieldset>
          <button type="submit">Add channel</button>
        </form>
        {error ? (
          <p class="error" role="alert">
            {error}
          </p>
        ) : null}
      </section>
      <section class="card">
        <h2>Recent deliveries</h2>
        <table data-testid="deliveries">
          <thead>
            <tr>
              <th>When</th>
              <th>Event</th>
              <th>Run</th>
              <th>Status</th>
              <th>Tries</th>
              <th>Last error</th>
            </tr>
          </thead>
          <tbody>
            {(deliveries.data ?? []).map((d) => (
              <tr key={d.id}>
                <td>{new Date(d.created_at).toLocaleString()}</td>
                <td>{d.event}</td>
                <td>{d.run_id ? <a href={`#/runs/${d.run_id}`}>{d.run_id}</a> : "—"}</td>
                <td>{d.status}</td>
                <td>{d.attempts}</td>
                <td>{d.last_error ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </section>
  );
}
