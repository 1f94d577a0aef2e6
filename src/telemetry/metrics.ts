// SageMaker's endpoint metrics under their own names (Invocations, Invocation4XXErrors,
// Invocation5XXErrors, ModelLatency, OverheadLatency, and the multi-model ones — namespace
// AWS/SageMaker), with its dimensions as labels, in Prometheus' text format. Latencies are
// microseconds, as SageMaker reports them.

export type Labels = Readonly<Record<string, string>>;

/** One metric under one set of labels; a caller that counts on every invocation keeps its series. */
export class Series {
  value = 0;
  sum = 0;
  count = 0;

  constructor(readonly labels: Labels) {}

  add(by = 1): void {
    this.value += by;
  }

  record(value: number): void {
    this.sum += value;
    this.count += 1;
  }
}

const HELP: Readonly<Record<string, [type: 'counter' | 'summary' | 'gauge', help: string]>> = {
  Invocations: ['counter', 'InvokeEndpoint requests sent to a model (SageMaker AWS/SageMaker Invocations).'],
  Invocation4XXErrors: ['counter', 'Invocations the model answered with a 4xx status.'],
  Invocation5XXErrors: ['counter', 'Invocations the model answered with a 5xx status, or that failed in berth.'],
  ModelLatency: ['summary', 'Microseconds the container(s) took to answer.'],
  OverheadLatency: ['summary', 'Microseconds berth added to the model latency.'],
  ModelCacheHit: ['summary', 'Multi-model invocations whose model was loaded already: sum = hits, count = invocations (SageMaker reports the Average).'],
  ModelLoadingWaitTime: ['summary', 'Microseconds a multi-model invocation waited for its model to be downloaded and loaded.'],
  ModelDownloadingTime: ['summary', 'Microseconds spent downloading and unpacking a model of a multi-model endpoint.'],
  ModelLoadingTime: ['summary', "Microseconds the container's load call (POST /models) took."],
  ModelUnloadingTime: ['summary', "Microseconds the container's unload call (DELETE /models/{name}) took."],
  LoadedModelCount: ['gauge', 'Models loaded in the containers of a multi-model variant, all instances together.'],
  LoadedModelBytes: ['gauge', "Memory held by a multi-model variant's loaded models, all instances together (berth's own)."],
};

export type MetricName = keyof typeof HELP;

/** Labels in the order given: every caller names a metric's labels in one order (this runs per call). */
function key(labels: Labels): string {
  let k = '';
  for (const name in labels) k += `${name}=${labels[name]}\u0000`;
  return k;
}

function escape(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export class Metrics {
  private readonly byName = new Map<string, Map<string, Series>>();

  /** The live series of `name` under `labels`, created at zero the first time. */
  series(name: MetricName, labels: Labels): Series {
    let byLabels = this.byName.get(name);
    if (!byLabels) {
      byLabels = new Map();
      this.byName.set(name, byLabels);
    }
    const k = key(labels);
    let s = byLabels.get(k);
    if (!s) {
      s = new Series(labels);
      byLabels.set(k, s);
    }
    return s;
  }

  increment(name: MetricName, labels: Labels, by = 1): void {
    this.series(name, labels).add(by);
  }

  set(name: MetricName, labels: Labels, value: number): void {
    this.series(name, labels).value = value;
  }

  observe(name: MetricName, labels: Labels, value: number): void {
    this.series(name, labels).record(value);
  }

  /** The Prometheus text exposition of every series. */
  render(): string {
    const lines: string[] = [];
    for (const [name, [type, help]] of Object.entries(HELP)) {
      const byLabels = this.byName.get(name);
      if (!byLabels) continue;
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const s of byLabels.values()) {
        const l = Object.entries(s.labels).map(([k, v]) => `${k}="${escape(v)}"`).join(',');
        if (type !== 'summary') lines.push(`${name}{${l}} ${s.value}`);
        else lines.push(`${name}_sum{${l}} ${s.sum}`, `${name}_count{${l}} ${s.count}`);
      }
    }
    return lines.join('\n') + '\n';
  }
}
