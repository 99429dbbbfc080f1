/** Builds the CustomResourceDefinition documents of both kinds from their schemas. */
import { GROUP, VERSION } from "./common.ts";
import { COVENANT_PEER_KIND, covenantPeerSchema } from "./covenantpeer.ts";
import { undocumented, type JSONSchema } from "./schema.ts";
import { TRAINING_RUN_KIND, trainingRunSchema } from "./trainingrun.ts";

export interface KindInfo {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  schema: JSONSchema;
  printerColumns: PrinterColumn[];
}

export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description: string;
  priority?: number;
}

const age: PrinterColumn = {
  name: "Age",
  type: "date",
  jsonPath: ".metadata.creationTimestamp",
  description: "Time since the object was created.",
};
const readyCondition = '.status.conditions[?(@.type=="Ready")].status';

export const TRAINING_RUN: KindInfo = {
  kind: TRAINING_RUN_KIND,
  plural: "trainingruns",
  singular: "trainingrun",
  shortNames: ["trun", "truns"],
  schema: trainingRunSchema.json,
  printerColumns: [
    {
      name: "Phase",
      type: "string",
      jsonPath: ".status.phase",
      description: "Where the run is in its life.",
    },
    { name: "Round", type: "integer", jsonPath: ".status.round", description: "Current outer round." },
    { name: "Peers", type: "integer", jsonPath: ".status.peers", description: "Peers referencing the run." },
    {
      name: "Ready",
      type: "integer",
      jsonPath: ".status.readyPeers",
      description: "Peers whose worker is Ready.",
    },
    age,
    {
      name: "Model",
      type: "string",
      jsonPath: ".spec.model.preset",
      description: "Model preset.",
      priority: 1,
    },
    {
      name: "Epoch",
      type: "integer",
      jsonPath: ".status.membershipEpoch",
      description: "Membership epoch.",
      priority: 1,
    },
  ],
};

export const COVENANT_PEER: KindInfo = {
  kind: COVENANT_PEER_KIND,
  plural: "covenantpeers",
  singular: "covenantpeer",
  shortNames: ["cpeer", "cpeers"],
  schema: covenantPeerSchema.json,
  printerColumns: [
    {
      name: "Run",
      type: "string",
      jsonPath: ".spec.runRef.name",
      description: "The TrainingRun of this peer.",
    },
    { name: "Role", type: "string", jsonPath: ".spec.role", description: "miner or validator." },
    { name: "Node", type: "string", jsonPath: ".status.nodeName", description: "Node of the worker pod." },
    { name: "UID", type: "integer", jsonPath: ".status.uid", description: "Uid on the subnet." },
    { name: "Ready", type: "string", jsonPath: readyCondition, description: "Whether the worker is Ready." },
    age,
    { name: "Pod", type: "string", jsonPath: ".status.podName", description: "Worker pod.", priority: 1 },
    {
      name: "Score",
      type: "number",
      jsonPath: ".status.score",
      description: "Validator score.",
      priority: 1,
    },
  ],
};

export const KINDS = [TRAINING_RUN, COVENANT_PEER] as const;

/** The CRD of one kind, as a plain object ready to serialise. */
export function crdFor(info: KindInfo): Record<string, unknown> {
  const missing = undocumented(info.schema);
  if (missing.length > 0)
    throw new Error(`${info.kind}: fields without a description: ${missing.join(", ")}`);
  const properties = { ...info.schema.properties, metadata: { type: "object" } };
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: `${info.plural}.${GROUP}`,
      labels: { "app.kubernetes.io/part-of": "covenant-operator" },
    },
    spec: {
      group: GROUP,
      names: {
        kind: info.kind,
        listKind: `${info.kind}List`,
        plural: info.plural,
        singular: info.singular,
        shortNames: info.shortNames,
        categories: ["covenant"],
      },
      scope: "Namespaced",
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: info.printerColumns,
          schema: { openAPIV3Schema: { ...info.schema, properties } },
        },
      ],
    },
  };
}
