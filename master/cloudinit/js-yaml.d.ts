/**
 * The part of js-yaml (4.x) Corral uses. js-yaml ships no types and @types/js-yaml is not a dependency;
 * these few declarations are checked against its behaviour by test/unit/cloudinit-yaml.test.ts.
 */
declare module 'js-yaml' {
  export interface TypeOptions {
    kind: 'scalar' | 'sequence' | 'mapping';
    resolve?: (data: unknown) => boolean;
    construct?: (data: unknown) => unknown;
    predicate?: (data: unknown) => boolean;
    represent?: ((data: unknown, style?: string) => string) | Record<string, (data: unknown) => string>;
    defaultStyle?: string;
  }
  export class Type {
    constructor(tag: string, options: TypeOptions);
    readonly tag: string;
  }
  export class Schema {
    extend(types: { implicit?: Type[]; explicit?: Type[] }): Schema;
  }
  export const FAILSAFE_SCHEMA: Schema;
  export const types: Record<'null' | 'bool' | 'int' | 'float' | 'str' | 'seq' | 'map', Type>;
  export class YAMLException extends Error {
    reason: string;
    mark?: { line: number; column: number };
  }
  export function load(
    text: string,
    options?: { schema?: Schema; filename?: string; json?: boolean },
  ): unknown;
  export function dump(
    value: unknown,
    options?: {
      schema?: Schema;
      lineWidth?: number;
      noRefs?: boolean;
      sortKeys?: boolean;
      noCompatMode?: boolean;
    },
  ): string;
  const jsYaml: {
    load: typeof load;
    dump: typeof dump;
    Type: typeof Type;
    FAILSAFE_SCHEMA: Schema;
    types: typeof types;
    YAMLException: typeof YAMLException;
  };
  export default jsYaml;
}
