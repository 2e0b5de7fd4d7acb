// One run, live: every panel reads the run from one SSE-fed state (lib/useRunLive.ts); each panel
// is a file of this folder and fetches what only it shows through api/usePoll.ts.

import { ACTIVE_STATUSES } from "../../api/types";
import { useRunActions } from "../../components/RunActions";
import { navigate } from "../../lib/router";
import { useNow } from "../../lib/useNow";
import { useRunLive } from "../../lib/useRunLive";
import { AttemptLog } from "./Attempts";
import { Benchmarks } from "./Benchmarks";
import { Checkpoints } from "./Checkpoints";
import { Ship } from "./Ship";
import { ConfigPanel } from "./ConfigPanel";
import { DataMix } from "./DataMix";
import { EvalPanel } from "./EvalPanel";
import { Header } from "./Header";
import { LogPanel } from "./LogPanel";
import { MetricsPanel } from "./MetricsPanel";
import { RunNotes } from "./RunNotes";
import { Stats } from "./Stats";
import { StatusBanner } from "./StatusBanner";
import { TryIt } from "./TryIt";

export function RunPage({ id }: { id: string }) {
  const live = useRunLive(id);
  const { run } = live;
  const now = useNow();
  const actions = useRunActions(live.setRun, () => navigate("/runs"));

  if (live.error && !run) {
    return (
      <section class="page">
        <p class="error" role="alert">
          {live.error}
        </p>
        <a href="#/runs">Back to runs</a>
      </section>
    );
  }
  if (!run) return <p class="page muted">Loading run {id}…</p>;

  const active = ACTIVE_STATUSES.has(run.status);
  return (
    <section class="page run-page" data-run-id={run.id}>
      <Header run={run} live={live.live} checkpoints={live.checkpoints} actions={actions} />
      <StatusBanner run={run} now={now} />
      <AttemptLog run={run} />
      <Stats run={run} now={now} active={active} />
      <MetricsPanel run={run} store={live.metrics} attemptStarts={live.attemptStarts} stageStarts={live.stageStarts} active={active} />
      <EvalPanel runId={run.id} store={live.metrics} events={live.evalEvents + (active ? 0 : 1)} />
      <LogPanel run={run} live={live} />
      <Checkpoints run={run} checkpoints={live.checkpoints} onResume={(name) => actions.resume(run, name, live.checkpoints)} />
      {live.checkpoints ? <TryIt runId={run.id} checkpoints={live.checkpoints} /> : null}
      {live.checkpoints ? <Ship run={run} checkpoints={live.checkpoints} /> : null}
      {live.checkpoints ? <Benchmarks runId={run.id} checkpoints={live.checkpoints} /> : null}
      <DataMix runId={run.id} started={run.step != null} version={live.version} />
      <ConfigPanel run={run} />
      <RunNotes run={run} onSaved={live.setRun} />
      {actions.dialog}
    </section>
  );
}
