/**
 * Form state shared by the administration pages. A refusal the API ties to a
 * field (`error.field`) is shown at that field, which is marked invalid and
 * focused; anything else is shown above the buttons. The user's input stays.
 */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api.js';
import './forms.css';

export type Values = Record<string, string | boolean>;

export interface Form<V extends Values> {
  id: string;
  values: V;
  errors: Partial<Record<keyof V & string, string>>;
  /** A refusal not about one field. */
  failure: string | null;
  busy: boolean;
  set(name: keyof V & string, value: string | boolean): void;
  reset(values?: V): void;
  /** Runs `action`; a refusal lands at its field (or in `failure`), the values are kept. */
  submit(action: () => Promise<void>): Promise<void>;
  /** A check made before anything is sent, shown as the API's would be. */
  refuse(name: keyof V & string, message: string): void;
}

/** The form field an API field names: itself, or its first segment (`ipam.cidr` is the form's `ipam`). */
export function formFieldOf(apiField: string | undefined, names: string[]): string | undefined {
  if (apiField === undefined) return undefined;
  if (names.includes(apiField)) return apiField;
  const head = apiField.split('.')[0]!;
  return names.includes(head) ? head : undefined;
}

export function useForm<V extends Values>(id: string, initial: V): Form<V> {
  const [values, setValues] = useState<V>(initial);
  const [errors, setErrors] = useState<Form<V>['errors']>({});
  const [failure, setFailure] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [focus, setFocus] = useState<string | null>(null);
  useEffect(() => {
    if (focus) document.getElementById(`${id}-${focus}`)?.focus();
  }, [focus, id]);
  const refuse = (name: string, message: string) => {
    setErrors({ [name]: message } as Form<V>['errors']);
    setFocus(name);
  };
  return {
    id,
    values,
    errors,
    failure,
    busy,
    set: (name, value) => {
      setValues((v) => ({ ...v, [name]: value }));
      if (errors[name]) setErrors((e) => ({ ...e, [name]: undefined }));
    },
    reset: (v) => {
      setValues(v ?? initial);
      setErrors({});
      setFailure(null);
    },
    refuse,
    async submit(action) {
      setBusy(true);
      setErrors({});
      setFailure(null);
      setFocus(null);
      try {
        await action();
      } catch (err) {
        const field = err instanceof ApiError ? formFieldOf(err.field, Object.keys(values)) : undefined;
        const message = err instanceof ApiError ? err.message : String(err);
        if (field) refuse(field, message);
        else setFailure(err instanceof ApiError ? `${err.code}: ${message}` : message);
      } finally {
        setBusy(false);
      }
    },
  };
}

interface FieldProps<V extends Values> {
  form: Form<V>;
  name: keyof V & string;
  label: string;
  help?: string;
}

function described(id: string, help: boolean, error: boolean): string | undefined {
  return [help && `${id}-help`, error && `${id}-error`].filter(Boolean).join(' ') || undefined;
}

function Wrap({ id, label, help, error, children, check }: { id: string; label: string; help?: string; error?: string; children: ComponentChildren; check?: boolean }) {
  return (
    <div class={check ? 'field check' : 'field'}>
      {check && children}
      <label for={id}>{label}</label>
      {!check && children}
      {help && (
        <span class="help" id={`${id}-help`}>
          {help}
        </span>
      )}
      {error && (
        <span class="field-error" id={`${id}-error`}>
          {error}
        </span>
      )}
    </div>
  );
}

interface InputProps {
  autoComplete?: string;
  required?: boolean;
  readOnly?: boolean;
  inputMode?: 'numeric' | 'text';
  /** A <datalist> id. */
  list?: string;
}

export function TextField<V extends Values>({ form, name, label, help, ...input }: FieldProps<V> & InputProps) {
  const id = `${form.id}-${name}`;
  const error = form.errors[name];
  return (
    <Wrap id={id} label={label} help={help} error={error}>
      <input
        {...(input as object)}
        id={id}
        name={name}
        value={String(form.values[name] ?? '')}
        onInput={(e) => form.set(name, e.currentTarget.value)}
        aria-invalid={error ? 'true' : undefined}
        aria-describedby={described(id, !!help, !!error)}
      />
    </Wrap>
  );
}

export function SelectField<V extends Values>({ form, name, label, help, options, disabled }: FieldProps<V> & { options: Array<[value: string, text: string]>; disabled?: boolean }) {
  const id = `${form.id}-${name}`;
  const error = form.errors[name];
  return (
    <Wrap id={id} label={label} help={help} error={error}>
      <select
        id={id}
        name={name}
        disabled={disabled}
        value={String(form.values[name] ?? '')}
        onChange={(e) => form.set(name, e.currentTarget.value)}
        aria-invalid={error ? 'true' : undefined}
        aria-describedby={described(id, !!help, !!error)}
      >
        {options.map(([value, text]) => (
          <option key={value} value={value}>
            {text}
          </option>
        ))}
      </select>
    </Wrap>
  );
}

export function CheckField<V extends Values>({ form, name, label, help, disabled }: FieldProps<V> & { disabled?: boolean }) {
  const id = `${form.id}-${name}`;
  const error = form.errors[name];
  return (
    <Wrap id={id} label={label} help={help} error={error} check>
      <input
        type="checkbox"
        id={id}
        name={name}
        disabled={disabled}
        checked={form.values[name] === true}
        onChange={(e) => form.set(name, e.currentTarget.checked)}
        aria-invalid={error ? 'true' : undefined}
        aria-describedby={described(id, !!help, !!error)}
      />
    </Wrap>
  );
}

/** The form's own refusal (not about one field), read out when it appears. */
export function FormFailure({ form }: { form: { failure: string | null } }) {
  return form.failure ? (
    <p class="alert" role="alert">
      {form.failure}
    </p>
  ) : null;
}

/** Focuses `ref`'s element when `when` turns true (a form opened, a secret shown). */
export function useFocusOn<T extends HTMLElement>(when: boolean) {
  const ref = useRef<T>(null);
  useEffect(() => {
    if (when) ref.current?.focus();
  }, [when]);
  return ref;
}
