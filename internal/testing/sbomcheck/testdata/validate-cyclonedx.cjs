'use strict'
// validate-cyclonedx.cjs FILE...: validates each file as a CycloneDX 1.6
// JSON BOM with @cyclonedx/cyclonedx-library's strict JSON validator (an
// independent consumer of Stevedore's output; see ../sbomcheck.go). Prints
// "FILE: valid CycloneDX 1.6" per valid file; exits 1 if any is invalid,
// 2 if the validator cannot run.
const fs = require('node:fs')
const { Spec, Validation } = require('@cyclonedx/cyclonedx-library')

async function main (files) {
  const validator = new Validation.JsonStrictValidator(Spec.Version.v1dot6)
  let invalid = 0
  for (const file of files) {
    const err = await validator.validate(fs.readFileSync(file, 'utf8'))
    if (err === null) {
      console.log(`${file}: valid CycloneDX 1.6`)
    } else {
      invalid++
      console.error(`${file}: invalid CycloneDX 1.6: ${JSON.stringify(err, null, 2)}`)
    }
  }
  return invalid === 0 ? 0 : 1
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code },
  (err) => { console.error(err); process.exitCode = 2 }
)
