/**
 * Placement constraints (docs/scheduling.md "Constraints"): which nodes a component may be placed
 * on. A constraint is one text `<attribute> <operator> <value>`:
 *
 *   board_type = GPU            box != 3              slot in 1,2,5
 *   node = 1-*-0                cpu_arch not_in x86_64,i686
 *   label.zone = east           os_type =~ ^Kylin     hostname !~ -test$
 *
 * Attributes: `node` (the id box-slot-cpu), `box`, `slot`, `cpu_id` (also `box_id`, `slot_id`,
 * `cpu`), the heartbeat's `board_type`, `box_type`, `cpu_arch`, `cpu_type`, `os_type`,
 * `resource_type`, `hostname`, and `label.<name>` (agent labels, the heartbeat's `labels`
 * extension). Operators: `=` / `==` (one glob, `*` and `?`), `!=`, `in` / `not_in` (a comma list
 * of globs), `=~` / `!~` (a JavaScript regular expression, unanchored). An attribute the node does
 * not report matches neither `=` nor `in` nor `=~` (and so always passes the negations). Pure: the
 * CLI checks a spec with it before sending, the manager matches with it (manager/scheduler/).
 */
import { globToRegExp } from './target.js';

/** Operators of a constraint. */
export const CONSTRAINT_OPERATORS = ['=', '!=', 'in', 'not_in', '=~', '!~'] as const;
/** An operator of a constraint. */
export type ConstraintOperator = (typeof CONSTRAINT_OPERATORS)[number];

/** Attributes with a fixed meaning (`label.<name>` names an agent label). */
export const CONSTRAINT_ATTRIBUTES = [
  'node',
  'box',
  'slot',
  'cpu_id',
  'board_type',
  'box_type',
  'cpu_arch',
  'cpu_type',
  'os_type',
  'resource_type',
  'hostname',
] as const;

/** Longest constraint text, characters (a regexp included). */
export const MAX_CONSTRAINT_LENGTH = 256;
/** Most constraints of one component group, or of one deploy. */
export const MAX_CONSTRAINTS = 32;

/** A parsed constraint with its matcher. */
export interface Constraint {
  /** The text it came from, normalized: `board_type = GPU`. Used in explanations. */
  text: string;
  attribute: string;
  operator: ConstraintOperator;
  /** The value(s) as written (`in`/`not_in`: the list). */
  values: string[];
  /** Whether `value` (the node's attribute, undefined when it reports none) satisfies the constraint. */
  test(value: string | undefined): boolean;
}

/** A constraint text that cannot be parsed; the message says why. */
export class ConstraintError extends Error {}

const ALIASES: Record<string, string> = { box_id: 'box', slot_id: 'slot', cpu: 'cpu_id', id: 'node' };
const LABEL_RE = /^label\.[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
const PARSE_RE = /^\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*(==|!=|=~|!~|=|\s+not_in\s+|\s+in\s+)\s*(.*?)\s*$/;
/** A quantified group that itself holds a quantifier: `(a+)+`, `(x*)*`, `(a|b+){2,}` (catastrophic backtracking). */
const NESTED_QUANTIFIER_RE = /\([^()]*[+*}][^()]*\)\s*[+*{]/;

/**
 * Parses one constraint text.
 * @throws ConstraintError for a text longer than MAX_CONSTRAINT_LENGTH, an unknown attribute or
 *   operator, an empty value, or a regexp that does not compile or nests quantifiers
 */
export function parseConstraint(text: string): Constraint {
  if (typeof text !== 'string' || text.length === 0) throw new ConstraintError('constraint is empty');
  if (text.length > MAX_CONSTRAINT_LENGTH)
    throw new ConstraintError(`constraint is longer than ${MAX_CONSTRAINT_LENGTH} characters`);
  const m = PARSE_RE.exec(text);
  if (!m) {
    throw new ConstraintError(
      `cannot read constraint ${JSON.stringify(text)}: expected "<attribute> <operator> <value>" with an operator of ${CONSTRAINT_OPERATORS.join(' ')}`,
    );
  }
  const rawAttr = (m[1] as string).toLowerCase().startsWith('label.')
    ? (m[1] as string)
    : (m[1] as string).toLowerCase();
  const attribute = ALIASES[rawAttr] ?? rawAttr;
  if (!(CONSTRAINT_ATTRIBUTES as readonly string[]).includes(attribute) && !LABEL_RE.test(attribute)) {
    throw new ConstraintError(
      `unknown attribute ${JSON.stringify(m[1])} in ${JSON.stringify(text)}; known: ${CONSTRAINT_ATTRIBUTES.join(', ')}, label.<name>`,
    );
  }
  const op = (m[2] as string).trim();
  const operator = (op === '==' ? '=' : op) as ConstraintOperator;
  const raw = m[3] as string;
  if (raw === '') throw new ConstraintError(`no value in ${JSON.stringify(text)}`);
  let values: string[];
  let test: (v: string | undefined) => boolean;
  if (operator === '=~' || operator === '!~') {
    if (NESTED_QUANTIFIER_RE.test(raw))
      throw new ConstraintError(`regexp ${JSON.stringify(raw)} nests quantifiers (refused: it can backtrack for ever)`);
    let re: RegExp;
    try {
      re = new RegExp(raw);
    } catch (err) {
      throw new ConstraintError(`bad regexp in ${JSON.stringify(text)}: ${(err as Error).message}`);
    }
    values = [raw];
    test = operator === '=~' ? (v) => v !== undefined && re.test(v) : (v) => v === undefined || !re.test(v);
  } else {
    values = operator === 'in' || operator === 'not_in' ? raw.split(',').map((s) => s.trim()) : [raw];
    if (values.some((v) => v === '')) throw new ConstraintError(`empty value in list of ${JSON.stringify(text)}`);
    if (values.length > MAX_CONSTRAINTS)
      throw new ConstraintError(`more than ${MAX_CONSTRAINTS} values in ${JSON.stringify(text)}`);
    const res = values.map((v) => (/[*?]/.test(v) ? globToRegExp(v) : null));
    const hit = (v: string | undefined): boolean => {
      if (v === undefined) return false;
      for (let i = 0; i < values.length; i++) {
        const re = res[i];
        if (re ? re.test(v) : v === values[i]) return true;
      }
      return false;
    };
    test = operator === '=' || operator === 'in' ? hit : (v) => !hit(v);
  }
  const shown = operator === 'in' || operator === 'not_in' ? values.join(',') : raw;
  return { text: `${attribute} ${operator} ${shown}`, attribute, operator, values, test };
}

/**
 * Parses a list of constraint texts.
 * @throws ConstraintError naming the index of the first bad one, or when there are more than MAX_CONSTRAINTS
 */
export function parseConstraints(texts: readonly string[]): Constraint[] {
  if (texts.length > MAX_CONSTRAINTS) throw new ConstraintError(`more than ${MAX_CONSTRAINTS} constraints`);
  return texts.map((t, i) => {
    try {
      return parseConstraint(t);
    } catch (err) {
      throw new ConstraintError(`constraints[${i}]: ${(err as Error).message}`);
    }
  });
}
