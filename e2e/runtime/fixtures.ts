// A small custom resource for runtime tests: Widget (stack.test.covenant.io/v1) with a status
// subresource, so that apply of spec and status can be tested apart from the project's CRDs.
import type { KubernetesObject } from "@kubernetes/client-node";
import type { KubeClient, ResourceRef } from "../../operator/kube/index.ts";
import { waitFor } from "../stack/wait.ts";

export const WIDGETS: ResourceRef = {
  group: "runtime.test.covenant.io",
  version: "v1",
  plural: "widgets",
  kind: "Widget",
  namespaced: true,
};

export interface Widget extends KubernetesObject {
  spec?: { size?: number; color?: string; failTimes?: number; requeueMs?: number; slowMs?: number };
  status?: { observedGeneration?: number; child?: string; phase?: string };
}

const CRDS: ResourceRef = {
  group: "apiextensions.k8s.io",
  version: "v1",
  plural: "customresourcedefinitions",
  kind: "CustomResourceDefinition",
  namespaced: false,
};

export async function installWidgetCrd(client: KubeClient): Promise<void> {
  const name = `${WIDGETS.plural}.${WIDGETS.group}`;
  const int = { type: "integer" };
  await client.create(CRDS, {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name },
    spec: {
      group: WIDGETS.group,
      scope: "Namespaced",
      names: { plural: WIDGETS.plural, singular: "widget", kind: WIDGETS.kind },
      versions: [
        {
          name: WIDGETS.version,
          served: true,
          storage: true,
          subresources: { status: {} },
          schema: {
            openAPIV3Schema: {
              type: "object",
              properties: {
                spec: {
                  type: "object",
                  properties: {
                    size: int,
                    color: { type: "string" },
                    failTimes: int,
                    requeueMs: int,
                    slowMs: int,
                  },
                },
                status: {
                  type: "object",
                  properties: {
                    observedGeneration: int,
                    child: { type: "string" },
                    phase: { type: "string" },
                  },
                },
              },
            },
          },
        },
      ],
    },
  } as KubernetesObject);
  await waitFor(`${name} established`, async () => {
    const crd = await client.get<
      KubernetesObject & { status?: { conditions?: { type: string; status: string }[] } }
    >(CRDS, undefined, name);
    return crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True");
  });
  // Discovery lags establishment a little: wait until the resource can be listed.
  await waitFor(`${name} served`, async () => (await client.list(WIDGETS)).items !== undefined);
}

export const widget = (namespace: string, name: string, spec: Widget["spec"] = {}): Widget => ({
  apiVersion: `${WIDGETS.group}/${WIDGETS.version}`,
  kind: WIDGETS.kind,
  metadata: { namespace, name },
  spec,
});
