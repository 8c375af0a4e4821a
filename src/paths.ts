// Where the package's own data lives at run time (dist/ sits beside schema/ and templates/).
import { fileURLToPath } from "node:url";
import { join } from "node:path";

export const packageRoot = fileURLToPath(new URL("../", import.meta.url));
export const schemaPath = join(packageRoot, "schema", "f3s.schema.json");
export const templatesDir = join(packageRoot, "templates");
export const examplesDir = join(packageRoot, "examples");
