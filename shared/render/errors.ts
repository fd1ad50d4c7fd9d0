/**
 * Typed render failures. Every one names the template it came from; nothing that raised one is ever served.
 *  - TemplateRenderError: the template did not parse or render (syntax, unknown filter, undefined variable, limits).
 *  - MissingParamError: a required param has no value (or a template read an unset param).
 *  - InvalidRenderError: the output failed its validator (Ignition schema, cloud-config schema, kickstart, …).
 *  - NoSuchFileError: the boot environment serves no file at that path.
 */
export class RenderError extends Error {
  override name = 'RenderError';
  constructor(
    readonly template: string,
    readonly reason: string,
  ) {
    super(`${template}: ${reason}`);
  }
}

export class TemplateRenderError extends RenderError {
  override name = 'TemplateRenderError';
}

export class MissingParamError extends RenderError {
  override name = 'MissingParamError';
  constructor(
    template: string,
    readonly param: string,
  ) {
    super(template, `required param "${param}" has no value`);
  }
}

export class InvalidRenderError extends RenderError {
  override name = 'InvalidRenderError';
  constructor(
    template: string,
    readonly validator: string,
    reason: string,
  ) {
    super(template, `rendered output is not valid ${validator}: ${reason}`);
  }
}

export class NoSuchFileError extends RenderError {
  override name = 'NoSuchFileError';
  constructor(
    bootenv: string,
    readonly path: string,
  ) {
    super(bootenv, `boot environment serves no file "${path}"`);
  }
}
