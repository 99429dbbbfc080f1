/**
 * A small schema language: each builder produces both the OpenAPI v3 schema that goes into
 * the CRD and, at the type level, the TypeScript type of the value it describes. The API
 * types of this package are inferred from their schemas, so the CRD, the defaults and the
 * controllers can never disagree about a field.
 */

import { applyDefaults } from "./defaults.ts";

/** The subset of OpenAPI v3 (with Kubernetes extensions) that the CRDs use. */
export interface JSONSchema {
  type?: "object" | "array" | "string" | "integer" | "number" | "boolean";
  description: string;
  format?: string;
  default?: unknown;
  enum?: readonly (string | number)[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  properties?: Record<string, JSONSchema>;
  required?: string[];
  items?: JSONSchema;
  additionalProperties?: JSONSchema;
  "x-kubernetes-int-or-string"?: true;
  "x-kubernetes-list-type"?: "atomic" | "set" | "map";
  "x-kubernetes-list-map-keys"?: string[];
  "x-kubernetes-map-type"?: "atomic" | "granular";
  "x-kubernetes-validations"?: ValidationRule[];
}

/** A CEL rule evaluated by the API server (x-kubernetes-validations). */
export interface ValidationRule {
  rule: string;
  message: string;
  /** JSONPath-like path of the field the message is about, relative to the rule's object. */
  fieldPath?: string;
  reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
}

/** Whether a field may be absent after the API server applied defaults. */
export type Presence = "required" | "defaulted" | "optional";

export interface Schema<T, P extends Presence = Presence> {
  readonly json: JSONSchema;
  readonly presence: P;
  /** Phantom: carries the value type; never set at run time. */
  readonly __type?: T;
}

export type Infer<S> = S extends Schema<infer T, Presence> ? T : never;

type Fields = Record<string, Schema<unknown, Presence>>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
type OptionalKeys<F extends Fields> = {
  [K in keyof F]: F[K] extends Schema<unknown, "optional"> ? K : never;
}[keyof F];
export type InferFields<F extends Fields> = Simplify<
  { [K in Exclude<keyof F, OptionalKeys<F>>]: Infer<F[K]> } & { [K in OptionalKeys<F>]?: Infer<F[K]> }
>;

type PresenceOf<O> = O extends { default: unknown } ? "defaulted" : "optional";

/** Strings without an explicit bound get this one, so CEL cost estimates stay finite. */
export const DEFAULT_MAX_STRING = 1024;

function make<T, P extends Presence>(json: JSONSchema, presence: P): Schema<T, P> {
  return { json, presence };
}

/** Marks a field as required (listed in its object's `required`). */
export function required<T>(s: Schema<T, Presence>): Schema<T, "required"> {
  if ("default" in s.json) throw new Error(`a required field cannot have a default: ${s.json.description}`);
  return make<T, "required">(s.json, "required");
}

interface StringOptions {
  default?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  format?: string;
  rules?: ValidationRule[];
}

export function string<O extends StringOptions>(description: string, o?: O): Schema<string, PresenceOf<O>> {
  const json: JSONSchema = { type: "string", description, maxLength: o?.maxLength ?? DEFAULT_MAX_STRING };
  if (o?.minLength !== undefined) json.minLength = o.minLength;
  if (o?.pattern !== undefined) json.pattern = o.pattern;
  if (o?.format !== undefined) json.format = o.format;
  if (o?.default !== undefined) json.default = o.default;
  if (o?.rules) json["x-kubernetes-validations"] = o.rules;
  return make(json, (o?.default !== undefined ? "defaulted" : "optional") as PresenceOf<O>);
}

export function enumeration<
  const E extends readonly string[],
  O extends { default?: E[number]; rules?: ValidationRule[] },
>(description: string, values: E, o?: O): Schema<E[number], PresenceOf<O>> {
  const json: JSONSchema = { type: "string", description, enum: values };
  if (o?.default !== undefined) json.default = o.default;
  if (o?.rules) json["x-kubernetes-validations"] = o.rules;
  return make(json, (o?.default !== undefined ? "defaulted" : "optional") as PresenceOf<O>);
}

interface NumberOptions<T> {
  default?: T;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  enum?: readonly number[];
  format?: "int32" | "int64" | "double";
  rules?: ValidationRule[];
}

export function integer<O extends NumberOptions<number>>(
  description: string,
  o?: O,
): Schema<number, PresenceOf<O>> {
  return numeric("integer", description, o);
}

export function number<O extends NumberOptions<number>>(
  description: string,
  o?: O,
): Schema<number, PresenceOf<O>> {
  return numeric("number", description, o);
}

function numeric<O extends NumberOptions<number>>(
  type: "integer" | "number",
  description: string,
  o?: O,
): Schema<number, PresenceOf<O>> {
  const json: JSONSchema = { type, description };
  if (o?.format !== undefined) json.format = o.format;
  else if (type === "integer") json.format = "int64";
  if (o?.minimum !== undefined) json.minimum = o.minimum;
  if (o?.exclusiveMinimum) json.exclusiveMinimum = true;
  if (o?.maximum !== undefined) json.maximum = o.maximum;
  if (o?.enum !== undefined) json.enum = o.enum;
  if (o?.default !== undefined) json.default = o.default;
  if (o?.rules) json["x-kubernetes-validations"] = o.rules;
  return make(json, (o?.default !== undefined ? "defaulted" : "optional") as PresenceOf<O>);
}

export function boolean<O extends { default?: boolean }>(
  description: string,
  o?: O,
): Schema<boolean, PresenceOf<O>> {
  const json: JSONSchema = { type: "boolean", description };
  if (o?.default !== undefined) json.default = o.default;
  return make(json, (o?.default !== undefined ? "defaulted" : "optional") as PresenceOf<O>);
}

/** A Kubernetes quantity such as `8`, `64Gi` or `500m`. */
export function quantity(description: string): Schema<number | string, "optional"> {
  return make(
    {
      description,
      "x-kubernetes-int-or-string": true,
      pattern:
        "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$",
    },
    "optional",
  );
}

interface ObjectOptions {
  default?: Record<string, never>;
  rules?: ValidationRule[];
  maxProperties?: number;
}

export function object<F extends Fields, O extends ObjectOptions>(
  description: string,
  fields: F,
  o?: O,
): Schema<InferFields<F>, PresenceOf<O>> & { fields: F } {
  const properties: Record<string, JSONSchema> = {};
  const req: string[] = [];
  for (const [name, s] of Object.entries(fields)) {
    properties[name] = s.json;
    if (s.presence === "required") req.push(name);
  }
  const json: JSONSchema = { type: "object", description, properties };
  if (req.length > 0) json.required = req;
  // The API server validates a default as written (defaults inside it are not applied
  // first), so an object's default carries its fields' defaults explicitly.
  if (o?.default !== undefined) json.default = applyDefaults(json, o.default);
  if (o?.maxProperties !== undefined) json.maxProperties = o.maxProperties;
  if (o?.rules) json["x-kubernetes-validations"] = o.rules;
  return { ...make(json, (o?.default !== undefined ? "defaulted" : "optional") as PresenceOf<O>), fields };
}

interface ArrayOptions {
  maxItems: number;
  minItems?: number;
  listType?: "atomic" | "set" | "map";
  listMapKeys?: string[];
  rules?: ValidationRule[];
}

export function array<T>(
  description: string,
  items: Schema<T, Presence>,
  o: ArrayOptions,
): Schema<T[], "optional"> {
  const json: JSONSchema = { type: "array", description, items: items.json, maxItems: o.maxItems };
  if (o.minItems !== undefined) json.minItems = o.minItems;
  if (o.listType) json["x-kubernetes-list-type"] = o.listType;
  if (o.listMapKeys) json["x-kubernetes-list-map-keys"] = o.listMapKeys;
  if (o.rules) json["x-kubernetes-validations"] = o.rules;
  return make(json, "optional");
}

export function map<T>(
  description: string,
  values: Schema<T, Presence>,
  o: { maxProperties: number; rules?: ValidationRule[] },
): Schema<Record<string, T>, "optional"> {
  const json: JSONSchema = {
    type: "object",
    description,
    additionalProperties: values.json,
    maxProperties: o.maxProperties,
  };
  if (o.rules) json["x-kubernetes-validations"] = o.rules;
  return make(json, "optional");
}

/** A number as a CEL double literal: `0.9999`, `1e-12`, `1.0`. */
export function celDouble(n: number): string {
  if (!Number.isFinite(n)) throw new Error(`not a finite bound: ${n}`);
  const s = String(n);
  return /[.e]/.test(s) ? s : `${s}.0`;
}

/** The CEL rule that checks a number field's bounds, with a message stating them exactly. */
export function numberBoundRule(
  path: string,
  b: { minimum?: number; exclusiveMinimum?: boolean; maximum?: number },
): ValidationRule {
  const checks: string[] = [];
  if (b.minimum !== undefined) checks.push(`self ${b.exclusiveMinimum ? ">" : ">="} ${celDouble(b.minimum)}`);
  if (b.maximum !== undefined) checks.push(`self <= ${celDouble(b.maximum)}`);
  let bound: string;
  if (b.minimum !== undefined && b.maximum !== undefined)
    bound = `be in ${b.exclusiveMinimum ? "(" : "["}${b.minimum}, ${b.maximum}]`;
  else if (b.minimum !== undefined)
    bound = b.exclusiveMinimum ? `be greater than ${b.minimum}` : `be at least ${b.minimum}`;
  else bound = `be at most ${b.maximum}`;
  return { rule: checks.join(" && "), message: `${path} must ${bound}` };
}

/**
 * Moves the bounds of every `number` field under `json` into a CEL rule whose message names
 * the field's path and states the bound exactly. The API server's OpenAPI check truncates a
 * fractional bound to an integer when the value is written as one (`beta1: 1` is refused with
 * "should be less than or equal to 0" for a maximum of 0.9999, and `normEps: 0` passes a
 * minimum of 1e-12), so number fields keep no minimum/maximum in the generated schema: the
 * builder's bounds are the one source, the rule the one check and the one message.
 * Integer fields keep their OpenAPI bounds, which the server reports exactly.
 */
export function numberBoundRules(json: JSONSchema, path = ""): JSONSchema {
  const out: JSONSchema = { ...json };
  if (json.type === "number" && (json.minimum !== undefined || json.maximum !== undefined)) {
    delete out.minimum;
    delete out.maximum;
    delete out.exclusiveMinimum;
    out["x-kubernetes-validations"] = [
      ...(json["x-kubernetes-validations"] ?? []),
      numberBoundRule(path, json),
    ];
  }
  const at = (k: string) => (path ? `${path}.${k}` : k);
  if (json.properties)
    out.properties = Object.fromEntries(
      Object.entries(json.properties).map(([k, v]) => [k, numberBoundRules(v, at(k))]),
    );
  if (json.items) out.items = numberBoundRules(json.items, `${path}[]`);
  if (json.additionalProperties)
    out.additionalProperties = numberBoundRules(json.additionalProperties, `${path}[*]`);
  return out;
}

/** A kind's root schema with numberBoundRules applied (the JSON the CRD and docs are made from). */
export function withNumberBoundRules<S extends Schema<unknown, Presence>>(s: S): S {
  return { ...s, json: numberBoundRules(s.json) };
}

/** Lists every field path whose schema lacks a description (the generator refuses those). */
export function undocumented(json: JSONSchema, path = ""): string[] {
  const out: string[] = [];
  if (!json.description || json.description.trim() === "") out.push(path || "<root>");
  for (const [k, v] of Object.entries(json.properties ?? {})) out.push(...undocumented(v, `${path}.${k}`));
  if (json.items) out.push(...undocumented(json.items, `${path}[]`));
  if (json.additionalProperties) out.push(...undocumented(json.additionalProperties, `${path}{}`));
  return out;
}
