/** The parser ships no types; this is its documented output shape. */
declare module 'parse-prometheus-text-format' {
  export interface PromSample { labels?: Record<string, string>; value?: string; count?: string; sum?: string; buckets?: Record<string, string> }
  export interface PromFamily { name: string; help: string; type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED'; metrics: PromSample[] }
  export default function parsePrometheusTextFormat(text: string): PromFamily[];
}
